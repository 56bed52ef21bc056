"""skal's architecture, read from its source (ast only): class sizes, the import graph, private
names. ``scripts/architecture.py`` computes the same and prints the report."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "skal_architecture", os.path.join(ROOT, "scripts", "architecture.py"))
arch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(arch)

MAX_CLASS_LINES = 400

def _closure(graph, start):
    seen, stack = set(), [start]
    while stack:
        for target in graph[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


CLASSES = arch.class_lengths()


@pytest.mark.parametrize("lines, name", [
    (n, c) for n, c in CLASSES if n > MAX_CLASS_LINES
] or [pytest.param(0, "none", id="no-long-class")])
def test_no_class_over_400_lines(lines, name):
    assert lines <= MAX_CLASS_LINES, (
        f"{name} has {lines} lines (more than {MAX_CLASS_LINES}): split it along its seams, "
        "one base and one small mixin per concern")


def test_class_lengths_are_measured():
    # the measurement itself: classes are found, decorators counted, and the known sizes match
    lengths = dict((c, n) for n, c in CLASSES)
    assert "skal.estimators._classifier.MCDropoutClassifier" in lengths
    assert 0 < lengths["skal.estimators._classifier.ResNet18Classifier"] <= MAX_CLASS_LINES
    assert len(lengths) > 50


@pytest.mark.parametrize("deferred", [False, True], ids=["module-level", "with-deferred"])
def test_no_import_cycle(deferred):
    graph = arch.import_graph(deferred=deferred)
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the graph was built
    assert arch.cycles(graph) == []


def test_cycle_detection_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert arch.cycles(graph) == [["a", "b", "c"]]


def _under(graph, prefix):
    return [m for m in graph if m == prefix or m.startswith(prefix + ".")]


def test_strategies_do_not_import_estimators():
    # strategies and estimators are on one floor, side by side: no strategy module (nor the
    # process-group helpers they use) imports an estimator module at import time
    graph = arch.import_graph()
    strategies = _under(graph, "skal.query") + ["skal.distributed"]
    estimators = set(_under(graph, "skal.estimators"))
    assert len(strategies) > 5 and len(estimators) > 20
    for module in strategies:
        upward = sorted(_closure(graph, module) & estimators)
        assert upward == [], f"{module} imports the estimator modules {upward} at import time"


@pytest.mark.parametrize("deferred", [False, True], ids=["module-level", "with-deferred"])
def test_nothing_imports_upward(deferred):
    graph = arch.import_graph(deferred=deferred)
    assert all(arch.floor_of(m) is not None for m in graph), "a package with no floor"
    assert arch.upward_imports(graph) == []


def test_the_floors_are_measured():
    assert arch.package_of("skal.estimators.waal._training") == "skal.estimators"
    assert arch.package_of("skal.cli") == "skal.cli"
    assert arch.floor_of("skal.utils.validation") < arch.floor_of("skal.query._batch")
    assert arch.floor_of("skal.query") == arch.floor_of("skal.estimators._classifier")
    assert arch.upward_imports({"skal.utils.x": {"skal.learner"}, "skal.learner": {"skal.utils.x"}}) \
        == [("skal.utils.x", "skal.learner")]


def test_no_private_name_crosses_a_package_boundary():
    assert arch.cross_package_private() == []


def test_crossing_private_names_are_found(tmp_path):
    pkg = tmp_path / "skal"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("from ._pool import Pool\n")
    (pkg / "data" / "_pool.py").write_text("Pool = 1\n_size = 2\n")
    (pkg / "cli.py").write_text("from .data import Pool\nfrom .data._pool import Pool\n"
                                "def f():\n    from .data._pool import _size\n")
    assert arch.cross_package_private(str(tmp_path)) == [
        ("skal.cli", "skal.data._pool.Pool"), ("skal.cli", "skal.data._pool._size")]


def test_private_imports_are_found():
    # _resolve and the private-name rule on a made-up module of the package
    import ast

    node = ast.parse("from ..nets.resnet import _Base, ResNet18").body[0]
    assert arch._resolve("skal.labeling.ingest", node, is_package=False) == "skal.nets.resnet"
    assert arch._private("_Base") and not arch._private("__all__")
    assert not arch._private("ResNet18")


def test_no_old_import_path_shims():
    # a name imported only to keep an old import path alive (marked noqa F401) is not allowed back
    found = {(module, name) for module, _, text in arch.noqa_shims()
             for name in [text.split(" import ", 1)[-1].split()[0].strip("(,")]}
    assert found == set(), found
