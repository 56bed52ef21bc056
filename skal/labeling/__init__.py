"""Label your own images with a person as the oracle.

A project (``skal label init``) keeps its state in ``PROJECT/skal.db``; the web page (``skal label
serve``), the Python API (:class:`Project`) and ``skal label export`` read and write the same rows.
The web page needs the ``label`` extra (``pip install 'skal[label]'``: Starlette, uvicorn, Jinja2).
"""

__all__ = ["BatchItem", "DEFAULT_CONFIG", "Project", "RescanReport", "available_strategies",
           "start_server"]


def __getattr__(name):
    # lazy, so that `skal --help` (which imports skal.labeling.cli) imports neither numpy nor
    # the web framework
    if name in ("BatchItem", "DEFAULT_CONFIG", "Project", "RescanReport", "available_strategies"):
        from . import project

        return getattr(project, name)
    if name == "start_server":
        from .app import start_server

        return start_server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
