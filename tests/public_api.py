"""The public API that the docstring, type-hint and documentation tests walk over.

Public means what scikit-learn means by it: every module and package of skal whose dotted name
has no part starting with an underscore is public (found by walking the package, so a new module
is covered the day it lands), and its public names are its ``__all__`` (for a module without one,
the functions and classes it defines whose names do not start with an underscore). For classes,
every public method and property that skal defines is public too (those inherited unchanged from
skorch, scikit-learn or torch are documented, and tested, by those projects).
"""

import importlib
import inspect
import pkgutil

import skal


def _public_modules():
    """``skal`` and every module under it with no private part in its dotted name, sorted."""
    names = ["skal"]
    for info in pkgutil.walk_packages(skal.__path__, "skal."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return tuple(sorted(names))


# The modules whose public names are the public API: numpydoc validates all of them
# (tests/test_docstrings.py) and docs/api.rst documents the same names (tests/test_docs.py).
PUBLIC_MODULES = _public_modules()
# The modules whose public signatures carry type hints (tests/test_type_hints.py, which walks
# the default of public_objects); the other public modules are not annotated yet.
CORE_MODULES = ("skal", "skal.query", "skal.datasets", "skal.experiment", "skal.exceptions")


def module_public_names(module):
    """The public names of ``module``: its ``__all__``, or the public functions and classes it
    defines when it has none."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return sorted(name for name, obj in vars(module).items()
                  if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                  and obj.__module__ == module.__name__)


def public_names(modules=PUBLIC_MODULES):
    """``(module name, name, object)`` for every public name of ``modules``."""
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in module_public_names(module):
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


def public_objects(modules=CORE_MODULES):
    """``(import path, class or None, method name or None, object)`` of every public callable
    of ``modules`` (by default :data:`CORE_MODULES`; pass :data:`PUBLIC_MODULES` for all).

    Each class or function appears once, under the module that defines it (``skal.bald`` and
    ``skal.query.bald`` are the same function), followed by its skal-defined public members.
    """
    seen = {}
    for _, _, obj in public_names(modules):
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
