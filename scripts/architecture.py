"""Measure skal's architecture from its source (ast only, nothing is imported).

Reports the module-level import graph (modules, edges, cycles), classes longer than a limit,
private names imported across modules and ``# noqa: F401`` re-export shims.
``tests/test_architecture.py`` asserts on the same functions.

Usage::

    python scripts/architecture.py [--json] [--max-class-lines 400] [--root CHECKOUT]
"""

import argparse
import ast
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "skal"


def module_files(root=ROOT, package=PACKAGE):
    """Map every module name of ``package`` to its file path."""
    out = {}
    base = os.path.join(root, package)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root)[:-3]
            parts = rel.split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = os.path.join(dirpath, name)
    return out


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level_imports(tree):
    """Yield the import statements run when the module is imported.

    Statements inside functions and classes are not (they run later, if ever); the bodies of
    ``if``/``try``/``with`` at module level are, except ``if TYPE_CHECKING:`` blocks.
    """
    stack = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                stack.extend(node.body)
            stack.extend(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                stack.extend(block)
            for handler in node.handlers:
                stack.extend(handler.body)
        elif isinstance(node, ast.With):
            stack.extend(node.body)


def _resolve(module, node, is_package):
    """The absolute name ``from ... import`` refers to, from inside ``module``."""
    if not node.level:
        return node.module
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _parents(name):
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _all_imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def import_graph(root=ROOT, package=PACKAGE, deferred=False):
    """Import graph of ``package``: ``{module: set of modules it imports}``.

    By default only the imports run when a module is imported (module level); with
    ``deferred=True`` also those inside functions (lazy imports, a module ``__getattr__``).

    An edge goes to the module named and, for ``from pkg import name`` where ``name`` is a
    submodule, to ``pkg.name``. Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``: that
    edge is added unless the importer lives inside ``a.b`` (then the package is already under
    way, as the root package always is).
    """
    files = module_files(root, package)
    graph = {name: set() for name in files}
    for name, path in files.items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        is_package = path.endswith("__init__.py")
        targets = set()
        nodes = _all_imports(tree) if deferred else module_level_imports(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = _resolve(name, node, is_package)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
        for target in targets:
            if target not in files:
                continue
            for module in _parents(target) + [target]:
                if module != name and not name.startswith(module + "."):
                    graph[name].add(module)
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def class_lengths(root=ROOT, package=PACKAGE):
    """``[(lines, 'module.Class')]`` for every class in ``package``, longest first."""
    out = []
    for name, path in module_files(root, package).items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                out.append((node.end_lineno - start + 1, f"{name}.{node.name}"))
    return sorted(out, key=lambda item: (-item[0], item[1]))


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(root=ROOT, package=PACKAGE):
    """``[(importer, 'module.name')]``: private names imported from another module of the package.

    A name is private when it starts with one underscore; importing a private *module*
    (``from ._pool import Pool``) is not counted, importing its private names is.
    """
    files = module_files(root, package)
    out = []
    for name, path in files.items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        is_package = path.endswith("__init__.py")
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = _resolve(name, node, is_package)
            if base is None or not (base == package or base.startswith(package + ".")):
                continue
            for alias in node.names:
                if _private(alias.name) and f"{base}.{alias.name}" not in files:
                    out.append((name, f"{base}.{alias.name}"))
    return sorted(set(out))


def cross_package_private(root=ROOT, package=PACKAGE):
    """``[(importer, 'module.name')]``: private modules or names reached from another package.

    The boundary is :func:`package_of`'s: inside ``skal.estimators`` every module may use every
    other, but from outside only public modules and names (no part of the imported path below the
    package, nor the name, starts with an underscore), as scikit-learn's packages do.
    """
    files = module_files(root, package)
    out = []
    for name, path in files.items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        is_package = path.endswith("__init__.py")
        for node in _all_imports(tree):
            if isinstance(node, ast.Import):
                pairs = [(alias.name, None) for alias in node.names]
            else:
                base = _resolve(name, node, is_package)
                pairs = [(base, alias.name) for alias in node.names]
            for base, imported in pairs:
                if base is None or not (base == package or base.startswith(package + ".")):
                    continue
                if package_of(base) == package_of(name):
                    continue
                target = base if imported is None else f"{base}.{imported}"
                below = target.split(".")[2:] if "." in package_of(base) else target.split(".")[1:]
                if any(_private(part) for part in below):
                    out.append((name, target))
    return sorted(set(out))


SHIM = re.compile(r"#\s*noqa:\s*F401")


def noqa_shims(root=ROOT, package=PACKAGE):
    """``[(module, line number, text)]`` of the ``# noqa: F401`` lines in the package."""
    out = []
    for name, path in module_files(root, package).items():
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if SHIM.search(line):
                    out.append((name, number, line.strip()))
    return out


#: The floors of the package, bottom first: a module imports only from its own floor or below.
FLOORS = (
    ("skal.exceptions", "skal.data", "skal.datasets"),
    ("skal.utils",),
    ("skal.distributed", "skal.nets"),
    ("skal.estimators", "skal.query", "skal.callbacks", "skal.losses", "skal.calibration",
     "skal.cost", "skal.stopping"),
    ("skal.learner", "skal.recipe"),
    ("skal.experiment", "skal.labeling"),
    ("skal.cli", "skal.__main__", "skal"),
)


def package_of(module, package=PACKAGE):
    """The package of skal that owns ``module``: ``skal.X`` for everything under a sub-package
    ``skal.X`` (``skal.estimators.waal._training`` -> ``skal.estimators``), else the module."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def floor_of(module):
    """The floor (index into :data:`FLOORS`) of ``module``'s package, or None."""
    owner = package_of(module)
    for number, packages in enumerate(FLOORS):
        if owner in packages:
            return number
    return None


def upward_imports(graph):
    """``[(importer, imported)]``: imports from a lower floor to a higher one, or of an unknown
    package."""
    out = []
    for name, targets in graph.items():
        for target in targets:
            a, b = floor_of(name), floor_of(target)
            if a is None or b is None or b > a:
                out.append((name, target))
    return sorted(out)


def _modules_under(files, prefix):
    return sorted(m for m in files if m == prefix or m.startswith(prefix + "."))


def reached(graph, module):
    """Every module ``module`` imports at import time, directly or through others."""
    seen, stack = set(), [module]
    while stack:
        for target in graph.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def report(max_class_lines=400, root=ROOT):
    graph = import_graph(root)
    found = cycles(graph)
    full = import_graph(root, deferred=True)
    long_classes = [(n, c) for n, c in class_lengths(root) if n > max_class_lines]
    private = private_imports(root)
    return {
        "modules": len(graph),
        "edges": sum(len(v) for v in graph.values()),
        "cycles": found,
        "edges_with_deferred_imports": sum(len(v) for v in full.values()),
        "cycles_with_deferred_imports": cycles(full),
        "strategies_reaching_estimators": {
            m: sorted(reached(graph, m) & set(_modules_under(graph, "skal.estimators")))
            for m in _modules_under(graph, "skal.query") + ["skal.distributed"]},
        "upward_imports": upward_imports(graph),
        "upward_imports_with_deferred": upward_imports(full),
        "cross_package_private": cross_package_private(root),
        f"classes_over_{max_class_lines}_lines": long_classes,
        "private_names_imported_across_modules": len({n for _, n in private}),
        "private_imports": len(private),
        "private_import_list": private,
        "noqa_F401_lines": noqa_shims(root),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--max-class-lines", type=int, default=400)
    parser.add_argument("--root", default=ROOT,
                        help="the checkout to measure (e.g. an exported older commit)")
    args = parser.parse_args(argv)
    out = report(args.max_class_lines, args.root)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"modules {out['modules']}, edges {out['edges']}, cycles {len(out['cycles'])}")
    for component in out["cycles"]:
        print("  cycle:", " <-> ".join(component))
    print(f"with imports inside functions: edges {out['edges_with_deferred_imports']}, "
          f"cycles {len(out['cycles_with_deferred_imports'])}")
    for component in out["cycles_with_deferred_imports"]:
        print("  cycle:", " <-> ".join(component))
    print("estimator modules the strategy modules import (at import time, through any chain):")
    for module, found in out["strategies_reaching_estimators"].items():
        print(f"  {module}: {', '.join(found) or '-'}")
    key = f"classes_over_{args.max_class_lines}_lines"
    print(f"classes over {args.max_class_lines} lines: {len(out[key])}")
    for n, c in out[key]:
        print(f"  {n:5d} {c}")
    print(f"private names imported across modules: {out['private_names_imported_across_modules']}"
          f" ({out['private_imports']} imports)")
    for importer, name in out["private_import_list"]:
        print(f"  {importer:32s} {name}")
    print(f"imports from a lower floor to a higher one: {len(out['upward_imports'])} "
          f"({len(out['upward_imports_with_deferred'])} with imports inside functions)")
    for importer, imported in out["upward_imports_with_deferred"]:
        print(f"  {importer:32s} {imported}")
    print(f"private modules or names imported from another package: "
          f"{len(out['cross_package_private'])}")
    for importer, name in out["cross_package_private"]:
        print(f"  {importer:32s} {name}")
    print(f"noqa: F401 lines: {len(out['noqa_F401_lines'])}")
    for module, number, text in out["noqa_F401_lines"]:
        print(f"  {module}:{number}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
