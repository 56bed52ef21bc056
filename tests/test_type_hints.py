"""Type hints on the public API, and the PEP 561 marker that makes type checkers read them."""

import configparser
import inspect
import os

import pytest
from public_api import public_objects

import skal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALLABLES = [(path, obj) for path, _, _, obj in public_objects()
             if not (inspect.isclass(obj) and issubclass(obj, BaseException))]


def _unannotated(func):
    sig = inspect.signature(func)
    missing = [name for name, p in sig.parameters.items()
               if p.annotation is inspect.Parameter.empty and name not in ("self", "cls")]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


@pytest.mark.parametrize("path, obj", CALLABLES, ids=[path for path, _ in CALLABLES])
def test_public_signatures_are_annotated(path, obj):
    if inspect.isclass(obj):
        init = obj.__init__
        if getattr(init, "__module__", "").split(".")[0] != "skal":
            return  # a dataclass's generated __init__ takes its annotated fields
        func = init
    else:
        func = obj
    assert _unannotated(func) == [], f"{path}: parameters without a type hint"


def test_the_hints_resolve():
    # annotations are real objects (no strings a type checker would have to guess at)
    import typing

    for path, obj in CALLABLES:
        func = obj.__init__ if inspect.isclass(obj) else obj
        if inspect.isfunction(func):
            typing.get_type_hints(func)


def test_py_typed_marker_is_shipped():
    assert os.path.isfile(os.path.join(os.path.dirname(skal.__file__), "py.typed"))
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    assert "py.typed" in cfg["options.package_data"]["skal"].split()
