"""The public API that the docstring, type-hint and documentation tests walk over.

Public means: every name in the ``__all__`` of the modules below, and for classes every public
method and property that skal defines (those inherited unchanged from skorch, scikit-learn or
torch are documented, and tested, by those projects).
"""

import importlib
import inspect

# The modules whose ``__all__`` is the public API; docs/api.rst documents the same names.
PUBLIC_MODULES = ("skal", "skal.query", "skal.datasets", "skal.experiment", "skal.exceptions")


def public_names():
    """``(module name, name, object)`` for every name in the public modules' ``__all__``."""
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


def _defined_in_skal(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "skal"


def _member_function(klass, attr):
    """The function behind a class attribute (method, classmethod, property getter) or None."""
    static = inspect.getattr_static(klass, attr)
    if isinstance(static, property):
        return static.fget
    func = getattr(static, "__func__", static)  # classmethod / staticmethod
    return func if inspect.isfunction(func) else None


def public_objects():
    """``(import path, class or None, method name or None, object)`` of every public callable.

    Each class or function appears once, under the module that defines it (``skal.bald`` and
    ``skal.query.bald`` are the same function), followed by its skal-defined public members.
    """
    seen = {}
    for _, _, obj in public_names():
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and _defined_in_skal(obj):
            seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    for path, obj in sorted(seen.items()):
        yield path, None, None, obj
        if not inspect.isclass(obj):
            continue
        fields = getattr(obj, "__dataclass_fields__", {})  # defaults of fields, not methods
        for attr in sorted(dir(obj)):
            if attr.startswith("_") or attr in fields:
                continue
            func = _member_function(obj, attr)
            if func is not None and _defined_in_skal(func):
                yield f"{path}.{attr}", obj, attr, func
