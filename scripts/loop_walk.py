"""The walk of one `skal run` round and the loops' fit / query call sites (issue 31, one loop).

``python scripts/loop_walk.py`` runs a tiny digits experiment (BALD, width-2 ResNet18, one
epoch) and, from round 1's ``on_round_begin`` to its ``on_round_end``, records every call
between two skal modules (``sys.setprofile``): the modules the round walks through, and those
at the loop level (``skal.experiment.*``, ``skal.learner``, ``skal.labeling.*``,
``skal.recipe``) with their call edges. Then it counts, with ``ast`` over the sources, the
places where the three loops (``skal/learner/_learner.py``, ``skal/experiment/runner.py``,
``skal/labeling/rounds.py``) call an estimator's ``fit`` or a query strategy themselves, and
where they go through an :class:`skal.ActiveLearner` instead.
"""

import argparse
import ast
import collections
import os
import sys
import tempfile
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOPS = ("skal/learner/_learner.py", "skal/experiment/runner.py", "skal/labeling/rounds.py")
LOOP_LEVEL = ("skal.experiment", "skal.learner", "skal.labeling", "skal.recipe")
#: the names a loop calls a query strategy by (``strategy(model, X_pool, ...)``)
_STRATEGY_NAMES = ("query_strategy", "strategy", "func")


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


def call_sites():
    """``{path: {kind: lines}}`` of the three loops. Kinds: ``fit`` (an estimator's ``fit``:
    a call of ``X.fit`` where ``X`` is neither ``self`` nor a learner), ``strategy`` (a query
    strategy called directly), ``learner`` (``fit`` / ``teach`` / ``query`` of an
    :class:`skal.ActiveLearner`, a variable or attribute named ``learner``)."""
    found = {}
    for path in LOOPS:
        with open(os.path.join(ROOT, path)) as f:
            tree = ast.parse(f.read())
        kinds = {"fit": [], "strategy": [], "learner": []}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute):
                owner = ast.unparse(func.value)
                if owner.split(".")[-1] == "learner" and func.attr in ("fit", "teach", "query"):
                    kinds["learner"].append(node.lineno)
                elif func.attr == "fit" and owner not in ("self", "super()"):
                    kinds["fit"].append(node.lineno)
                elif func.attr in _STRATEGY_NAMES:
                    kinds["strategy"].append(node.lineno)
            elif getattr(func, "id", None) in _STRATEGY_NAMES:
                kinds["strategy"].append(node.lineno)
        found[path] = {k: sorted(v) for k, v in kinds.items()}
    return found


def _unit(module):
    """A module at the loop level, with the learner package's private modules as the learner
    (they were one module, ``skal/learner.py``, with its ``skal._learner_*`` helpers, before the
    package was laid out in floors)."""
    return "skal.learner" if module.startswith("skal.learner.") else module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="list every module entered")
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    modules, edges = walk()
    loop = sorted({_unit(m) for m in modules if m.startswith(LOOP_LEVEL)})
    print(f"one skal run round (round 1 of bald): {len(modules)} skal modules entered, "
          f"{len(loop)} at the loop level")
    print("  loop level: " + ", ".join(loop))
    if args.modules:
        print("  all: " + ", ".join(sorted(modules)))
    loop_edges = collections.Counter()
    for (a, b), n in edges.items():
        if a.startswith(LOOP_LEVEL) and b.startswith(LOOP_LEVEL) and _unit(a) != _unit(b):
            loop_edges[_unit(a), _unit(b)] += n
    print(f"  calls between loop-level modules: {sum(loop_edges.values())} over "
          f"{len(loop_edges)} edges")
    for (a, b), n in sorted(loop_edges.items()):
        print(f"    {a} -> {b}: {n}")
    print("call sites of the loops (ast): an estimator's fit, a strategy, an ActiveLearner's "
          "fit/teach/query")
    total = collections.Counter()
    for path, kinds in call_sites().items():
        total.update({k: len(v) for k, v in kinds.items()})
        print(f"  {path}: " + ", ".join(f"{k} {len(v)} {v}" for k, v in kinds.items()))
    print("  total: " + ", ".join(f"{k} {total[k]}" for k in ("fit", "strategy", "learner")))

if __name__ == "__main__":
    main()
