"""The walk of one `skal run` round and the loops' fit / query call sites (issue 31, one loop).

``python scripts/loop_walk.py`` runs a tiny digits experiment (BALD, width-2 ResNet18, one
epoch) and, from round 1's ``on_round_begin`` to its ``on_round_end``, records every call
between two skal modules (``sys.setprofile``): the modules the round walks through, and those
at the loop level (``skal.experiment.*``, ``skal.learner``, ``skal.labeling.*``,
``skal.recipe``) with their call edges. Then it counts, with a regular expression over the
sources, the places where the three loops (``skal/learner.py``, ``skal/experiment/runner.py``,
``skal/labeling/rounds.py``) call an estimator's ``fit`` or a query strategy.
"""

import argparse
import ast
import collections
import os
import sys
import tempfile
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOPS = ("skal/learner.py", "skal/experiment/runner.py", "skal/labeling/rounds.py")
LOOP_LEVEL = ("skal.experiment", "skal.learner", "skal.labeling", "skal.recipe")
#: the names a loop calls a query strategy by (``strategy(model, X_pool, ...)``) or a learner's
#: ``query``
_QUERY_NAMES = ("query_strategy", "strategy", "func", "query")


def _module(frame):
    name = frame.f_globals.get("__name__", "")
    return name if name == "skal" or name.startswith("skal.") else None


def walk():
    """``(modules, edges)`` of round 1 of a tiny run: skal modules entered and caller -> callee
    module counts."""
    from skal.experiment import RunCallback, run_experiment

    modules, edges = set(), collections.Counter()

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = _module(frame)
        if callee is None:
            return
        modules.add(callee)
        back = frame.f_back
        while back is not None and _module(back) is None:  # through numpy / torch / skorch
            back = back.f_back
        caller = None if back is None else _module(back)
        if caller is not None and caller != callee:
            edges[caller, callee] += 1

    class Trace(RunCallback):
        def on_round_begin(self, ctx, **kwargs):
            if ctx.round == 1:
                sys.setprofile(profile)

        def on_round_end(self, ctx, model, row, **kwargs):
            if ctx.round == 1:
                sys.setprofile(None)

    config = dict(dataset="digits", method="bald", n_initial=20, query_size=10, n_rounds=2,
                  repeats=1, pool_size=120, test_size=60, width=2, max_epochs=1, batch_size=32,
                  n_mc_samples=4)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_experiment(config, tmp, progress=False, callbacks=[Trace()])
    return modules, edges


def _callee(node):
    func = node.func
    if isinstance(func, ast.Attribute):
        owner = func.value
        own = isinstance(owner, ast.Name) and owner.id == "self" or (
            isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super")
        return func.attr, own
    return getattr(func, "id", None), False


def call_sites():
    """``{path: (fit call lines, query call lines)}`` of the three loops: calls of some
    object's ``fit`` (not ``self.fit``) and of a query strategy or a learner's ``query``."""
    found = {}
    for path in LOOPS:
        with open(os.path.join(ROOT, path)) as f:
            tree = ast.parse(f.read())
        fits, queries = [], []
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name, own = _callee(node)
            if name == "fit" and not own:
                fits.append(node.lineno)
            elif name in _QUERY_NAMES and not (own and name == "query"):
                queries.append(node.lineno)
        found[path] = (sorted(fits), sorted(queries))
    return found


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    sys.path.insert(0, ROOT)
    modules, edges = walk()
    loop = sorted(m for m in modules if m.startswith(LOOP_LEVEL))
    print(f"one skal run round (round 1 of bald): {len(modules)} skal modules entered, "
          f"{len(loop)} at the loop level")
    print("  loop level: " + ", ".join(loop))
    loop_edges = {e: n for e, n in edges.items() if e[0].startswith(LOOP_LEVEL)
                  and e[1].startswith(LOOP_LEVEL)}
    print(f"  calls between loop-level modules: {sum(loop_edges.values())} over "
          f"{len(loop_edges)} edges")
    for (a, b), n in sorted(loop_edges.items()):
        print(f"    {a} -> {b}: {n}")
    print("fit / query call sites of the loops (ast):")
    total_fit = total_query = 0
    for path, (fits, queries) in call_sites().items():
        total_fit, total_query = total_fit + len(fits), total_query + len(queries)
        print(f"  {path}: fit {len(fits)} {fits}, query {len(queries)} {queries}")
    print(f"  total: fit {total_fit}, query {total_query}")


if __name__ == "__main__":
    main()
