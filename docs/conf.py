"""Sphinx configuration of skal's documentation (build: ``bash scripts/docs.sh``)."""

import os
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # document this checkout, not an installed copy

import skal  # noqa: E402
from docutils import nodes  # noqa: E402
from docutils.parsers.rst import Directive  # noqa: E402
from docutils.statemachine import StringList  # noqa: E402

project = "skal"
author = "the skal developers"
copyright = "the skal developers; BSD-3-Clause"
version = release = skal.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# The method notes (waal.md, ...) are read by people on GitHub too, where the README and the code
# cite them by path and section; MyST renders them unchanged.
myst_heading_anchors = 3
# some method notes start below level 1 or skip a level (they began as README sections)
suppress_warnings = ["myst.header"]

# API reference: one page per public name (docs/generated/, rebuilt every time).
autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections give the types, with shapes
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False

# The gallery: every examples/plot_*.py runs at build time (digits, tiny networks, 1-3 epochs).
sphinx_gallery_conf = {
    "examples_dirs": os.path.join(ROOT, "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "matplotlib_animations": False,
}
# Examples print no warnings of their own; these come from libraries, not from skal.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="skorch")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")

html_theme = "furo"
html_title = f"skal {release}"
html_static_path = []


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document the members skal defines, not those inherited unchanged from skorch,
    scikit-learn or imbalanced-learn (their documentation is theirs; tests/test_docstrings.py
    validates the same set)."""
    if what != "class":
        return None
    func = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    if not (getattr(func, "__module__", None) or "").startswith("skal"):
        return True
    return None


def _public_modules():
    """``(dotted name, is a package, first paragraph of its docstring)`` of every public module and package of
    skal, read from the source files (ast only, nothing is imported); a module or package whose
    name starts with an underscore is private and left out."""
    import ast
    import pkgutil

    found = []
    for info in pkgutil.walk_packages(skal.__path__, "skal."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        spec = info.module_finder.find_spec(info.name)
        with open(spec.origin, encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
        found.append((info.name, info.ispkg, doc.strip().split("\n\n")[0].replace("\n", " ")))
    return found


class _LayoutDirective(Directive):
    """``.. skal-layout::``: the package's public modules with their summaries, made from the
    source at every build (docs/layout.rst), so the list cannot fall behind the code."""

    has_content = False

    def run(self):
        lines = []
        for name, ispkg, summary in _public_modules():
            kind = "package" if ispkg else "module"
            depth = name.count(".") - 1
            lines += [f"{'  ' * depth}* ``{name}`` ({kind}): {summary}", ""]
        node = nodes.container()
        self.state.nested_parse(StringList(lines, source="skal-layout"), self.content_offset,
                                node)
        return node.children


class _FloorsDirective(Directive):
    """``.. skal-floors::``: the floors of ``scripts/architecture.py`` (the ones
    ``tests/test_architecture.py`` enforces), top floor first."""

    has_content = False

    def run(self):
        import importlib.util

        # found beside the package (the docs may be built from a copy of docs/)
        checkout = os.path.dirname(os.path.dirname(os.path.abspath(skal.__file__)))
        spec = importlib.util.spec_from_file_location(
            "skal_architecture", os.path.join(checkout, "scripts", "architecture.py"))
        arch = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(arch)
        lines = []
        for number, packages in reversed(list(enumerate(arch.FLOORS))):
            names = ", ".join(f"``{p}``" for p in packages)
            lines += [f"* floor {number}: {names}", ""]
        node = nodes.container()
        self.state.nested_parse(StringList(lines, source="skal-floors"), self.content_offset,
                                node)
        return node.children


def _no_signature_for_data(app, what, name, obj, options, signature, return_annotation):
    # a type alias such as ``tuple[np.ndarray, np.ndarray]`` is callable, so numpydoc offers it a
    # signature, and Sphinx fails formatting it ("list assignment index out of range"): data has
    # no signature
    if what == "data":
        return None, None
    return None


def setup(app):
    app.connect("autodoc-process-signature", _no_signature_for_data, priority=400)
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.add_directive("skal-layout", _LayoutDirective)
    app.add_directive("skal-floors", _FloorsDirective)
