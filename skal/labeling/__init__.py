"""Label your own images with a person as the oracle.

A project (``skal label init``) keeps its state in ``PROJECT/skal.db``; the web page (``skal label
serve``), the Python API (:class:`Project`) and ``skal label export`` read and write the same rows.
The web page needs the ``label`` extra (``pip install skal[label]``: Starlette, uvicorn, Jinja2).
"""

from .project import DEFAULT_CONFIG, BatchItem, Project, available_strategies

__all__ = ["BatchItem", "DEFAULT_CONFIG", "Project", "available_strategies"]
