"""The documentation: the API reference lists the whole public API, the gallery has its
examples, and Sphinx builds the pages with warnings as errors (without running the gallery,
which ``scripts/docs.sh`` does)."""

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys

import pytest
from public_api import public_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
EXAMPLES = os.path.join(ROOT, "examples")


def _documented_objects():
    """The objects docs/api.rst documents (autosummary entries and autodata directives)."""
    text = open(os.path.join(DOCS, "api.rst"), encoding="utf-8").read()
    module, found = "skal", {}
    for line in text.splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = m.group(1)
        elif m := re.match(r"\.\. autodata:: (\S+)", line):
            mod, _, name = m.group(1).rpartition(".")
            found[m.group(1)] = getattr(importlib.import_module(mod), name)
        elif m := re.match(r"   ([A-Za-z_][\w.]*)$", line):
            path = f"{module}.{m.group(1)}"
            mod, _, name = path.rpartition(".")
            try:
                owner = importlib.import_module(mod)
            except ImportError:  # e.g. skal.estimators.bgadl.BGADLMixin under currentmodule skal
                top, _, sub = mod.partition(".")
                owner = importlib.import_module(f"{top}.{sub}")
            found[path] = getattr(owner, name)
    return found


def test_the_api_reference_lists_every_public_name():
    documented = {id(obj) for obj in _documented_objects().values()}
    missing = [f"{module}.{name}" for module, name, obj in public_names()
               if name != "__version__" and id(obj) not in documented]
    assert missing == [], "docs/api.rst does not document: " + ", ".join(missing)


def test_the_method_notes_are_in_the_site():
    # (Sphinx itself fails the build below for a page that is in no toctree)
    notes = {"waal", "bgadl", "bgadl_ablation", "ecosystem"}
    assert notes <= {f[:-3] for f in os.listdir(DOCS) if f.endswith(".md")}
    toctree = open(os.path.join(DOCS, "methods.rst"), encoding="utf-8").read().split()
    assert notes <= set(toctree)


EXAMPLE_FILES = sorted(f for f in os.listdir(EXAMPLES) if f.startswith("plot_"))


def test_the_gallery_has_its_five_examples():
    assert len(EXAMPLE_FILES) >= 5
    sources = {f: open(os.path.join(EXAMPLES, f), encoding="utf-8").read() for f in EXAMPLE_FILES}
    for topic in ("ActiveLearner", "WAALClassifier", "BGADLClassifier", "GridSearchCV",
                  "run_experiment"):
        assert any(topic in src for src in sources.values()), topic
    for name, src in sources.items():
        title = ast.get_docstring(ast.parse(src)).splitlines()
        assert len(title) > 2 and set(title[1]) == {"="}, f"{name}: no sphinx-gallery title"
        assert "digits" in src, f"{name} should run on the small digits data"


@pytest.mark.slow
def test_sphinx_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="Sphinx is not installed; it is in skal's 'docs' "
                                         "extra: pip install -e '.[docs]'")
    for module in ("numpydoc", "sphinx_gallery", "myst_parser", "furo"):
        pytest.importorskip(module, reason=f"{module} is not installed; it is in skal's "
                                           "'docs' extra: pip install -e '.[docs]'")
    # a copy, so that the checkout's docs/ gets no generated files from the test
    ignore = shutil.ignore_patterns("_build", "generated", "auto_examples")
    shutil.copytree(DOCS, tmp_path / "docs", ignore=ignore)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "dummy",
         "-D", "plot_gallery=0", str(tmp_path / "docs"), str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
