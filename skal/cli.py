"""The ``skal`` command: run simulated active-learning experiments and compare them.

``skal run`` runs one experiment per method (see :func:`skal.experiment.run_experiment`),
resumes it when run again with the same output folder and extends it when run with more rounds
or repeats; ``skal compare`` overlays the learning curves of finished runs. The options of
``skal run`` are the fields of :class:`skal.experiment.ExperimentConfig`.

Exit status: 0 on success; 2 with a one-line message for a usage or configuration error
(:class:`skal.exceptions.ConfigError`, an unknown device, a parameter the method's estimator
refuses), before anything is written; 1 with a one-line message when training diverges (the
finished rounds are kept); 130 when interrupted. Any other error keeps its traceback. Messages
of ``skal run`` name the flags (``--batch-size``), not the Python parameters, and skal's own
warnings (a round at chance level, :class:`skal.exceptions.ChanceAccuracyWarning`) are one line,
``skal: warning: ...``.

Nothing heavy is imported to parse the command line: torch, skorch, scikit-learn and matplotlib
are loaded only when a command runs, so ``skal --help`` is fast.
"""

import argparse
import os
import sys
import warnings

from . import __version__
from .exceptions import ConfigError, DeviceError, DivergenceError
from .experiment.config import (
    BUILTIN_METHODS,
    BUILTIN_RECIPES,
    flag_names,
    flag_of,
    option_fields,
)
from .labeling.cli import add_label_parser

__all__ = ["main"]

_USAGE_ERROR = 2
_FAILED = 1


class _UsageError(Exception):
    """A mistake in the command line, reported without a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (``skal run: error: ...``) and exit status 2."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def _float_above(low):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if low is not None and not value > low:
            raise argparse.ArgumentTypeError(f"expected a number > {low:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


_RUN_EPILOG = """\
methods:
{methods}

recipes (--recipe; NAME+fixmatch / NAME+pseudo_label add semi-supervised training):
{recipes}

A recipe with an encoder fits a SimCLR encoder on each repeat's pool once (cached in
OUT/encoders, shared by the runs of --methods); without --method, the recipe's own method runs.

Options that a method does not use (e.g. --width for waal, --mc-samples for random) are refused;
with --methods, each method gets the options it uses.

Resuming and extending: run the same command with the same --out to resume after an
interruption; more --rounds or --repeats extend a finished run; --device may differ between
runs (each result row records it). Another value of any other option is refused (use another
--out). One run at a time per folder: a second one is refused while the first lives.

Determinism: on the CPU the results depend on the torch thread count (OMP_NUM_THREADS, default:
the number of cores). It is recorded with the run, and a resume with another count is refused:
set OMP_NUM_THREADS to the recorded count.

Exit status: 0 done; 1 training diverged (finished rounds kept); 2 usage or configuration error
(nothing written); 130 interrupted (run again to resume).
"""


def _shown_default(f):
    if f.metadata["shown"] is not None:
        return f.metadata["shown"]
    if f.metadata["kind"] == "bool":
        return "off"
    return f.default


def _add_config_option(parser, f):
    meta = f.metadata
    kwargs = {"dest": f.name, "default": argparse.SUPPRESS}  # absent unless given
    text = f"{meta['help']} (default: {_shown_default(f)})"
    if f.name == "dataset":
        from .datasets import DATASETS  # numpy only

        text = f"{meta['help']}: {', '.join(DATASETS)} (default: {f.default})"
    if f.name == "method":
        text = "query method, see below (default: the recipe's; bald for scratch)"
    if f.name == "recipe":
        text = f"training recipe, see below (default: {f.default})"
    if meta["kind"] == "bool":
        kwargs["action"] = "store_true"
    elif meta["kind"] == "int":
        kwargs.update(type=_int_at_least(meta["low"]), metavar="N")
    elif meta["kind"] == "float":
        kwargs.update(type=_float_above(meta["low"]), metavar="X")
    elif meta["kind"] == "choice":
        kwargs["choices"] = meta["choices"]
        if all(isinstance(c, int) for c in meta["choices"]):
            kwargs["type"] = int
    else:
        kwargs["metavar"] = f.name.upper()
    parser.add_argument(flag_of(f.name), help=text, **kwargs)


def _add_run_parser(commands):
    width = max(map(len, BUILTIN_METHODS))
    methods = "\n".join(f"  {name:<{width}}  {line}" for name, line in BUILTIN_METHODS.items())
    rwidth = max(map(len, BUILTIN_RECIPES))
    recipes = "\n".join(f"  {name:<{rwidth}}  {line}" for name, line in BUILTIN_RECIPES.items())
    run = commands.add_parser(
        "run", help="run (or resume, or extend) an active-learning experiment",
        description="Run a simulated-oracle active-learning experiment: train, score on the\n"
                    "test set and query, round after round, with the data set's labels as "
                    "oracle.",
        epilog=_RUN_EPILOG.format(methods=methods, recipes=recipes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for f in option_fields():
        _add_config_option(run, f)
    run.add_argument("--methods", metavar="M1,M2",
                     help="several methods, comma-separated; each runs in OUT/METHOD, and "
                          "OUT/learning_curve.png overlays them (default: --method only)")
    run.add_argument("--out", required=True,
                     help="output folder (created; resumed or extended if it holds this run)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress bars or per-round lines (default: off)")
    run.set_defaults(handler=_run)


def _add_compare_parser(commands):
    compare = commands.add_parser(
        "compare", help="overlay the learning curves of several runs",
        description="Overlay the learning curves of finished (or partial) runs in one PNG. A "
                    "folder made by 'skal run --methods' adds all its runs.",
    )
    compare.add_argument("dirs", nargs="+", metavar="DIR", help="run folders")
    compare.add_argument("--out", default="compare.png",
                         help="PNG to write (default: compare.png)")
    compare.add_argument("--title", help="plot title (default: the data set and sizes)")
    compare.add_argument("--baseline", metavar="DIR",
                         help="a run folder (plotted too): print the labels every other run "
                              "needs to reach its accuracy at its largest budget (per repeat, "
                              "interpolated) and the ratio")
    compare.add_argument("--summary", metavar="JSON",
                         help="with --baseline: also write the numbers, for every budget of the "
                              "baseline, to this JSON file")
    compare.set_defaults(handler=_compare)


def _build_parser():
    parser = _Parser(prog="skal", description="Deep active learning experiments.")
    parser.add_argument("--version", action="version", version=f"skal {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run_parser(commands)
    _add_compare_parser(commands)
    add_label_parser(commands)
    return parser


def _default_method(args):
    """The recipe's own method (``bald`` for ``scratch``), for a command without --method."""
    from .recipe import get_recipe

    try:
        return get_recipe(getattr(args, "recipe", "scratch")).strategy
    except ValueError:  # the run's configuration reports the unknown recipe, with the options
        return "bald"


def _methods(args, registry):
    names = (args.methods.split(",") if args.methods
             else [getattr(args, "method", None) or _default_method(args)])
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise _UsageError("skal run: error: --methods names no method")
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise _UsageError(
            f"skal run: error: unknown method {unknown[0]!r}; expected one of: "
            f"{', '.join(sorted(registry))}"
        )
    return names


def _configs(args, names, registry):
    """One configuration per method, each with the given options that the method uses."""
    from .experiment import ExperimentConfig

    given = {f.name: getattr(args, f.name) for f in option_fields()
             if hasattr(args, f.name) and f.name != "method"}
    for name in given:
        if all(name in registry[m].ignores for m in names):
            method = registry[names[0]]
            which = f"method {names[0]!r}" if len(names) == 1 else f"any of {', '.join(names)}"
            raise _UsageError(
                f"skal run: error: {flag_of(name)} does not apply to {which}: {names[0]} "
                f"{method.ignore_reason(name)}"
            )
    configs = [
        ExperimentConfig(method=m, **{k: v for k, v in given.items()
                                      if k not in registry[m].ignores})
        for m in names
    ]
    for name in ("width", "preact"):  # the trunk of a recipe with an encoder is the encoder's
        if name in given and configs[0].recipe_spec().uses_encoder:
            raise _UsageError(
                f"skal run: error: {flag_of(name)} does not apply to --recipe "
                f"{configs[0].recipe}: its network is the encoder's (set --encoder-width)")
    return configs


def _run(args):
    from .experiment import (
        CURVE_PNG,
        METHODS,
        compare_runs,
        load_experiment_data,
        run_experiment,
    )
    from .experiment.runner import check_estimator_params
    from .utils.validation import check_device

    names = _methods(args, METHODS)
    several = args.methods is not None
    configs = _configs(args, names, METHODS)  # validate all before running any
    for config in configs:
        check_device(config.device, flag="--device")
    if len(configs) > 1:  # run_experiment checks its own; these would fail after the first ran
        classes = load_experiment_data(configs[0]).classes  # the same data for every method
        for config in configs:
            check_estimator_params(config, classes)
    out_dirs = [os.path.join(args.out, name) if several else args.out for name in names]
    cache = os.path.join(args.out, "encoders")  # one encoder per repeat for all the methods
    for config, out_dir in zip(configs, out_dirs):
        result = run_experiment(config, out_dir, progress=not args.quiet, encoder_cache=cache)
        print(f"{config.method}: results in {out_dir}")
        for n_labeled, accuracy in result.mean_accuracy().items():
            print(f"  {n_labeled:6d} labels: mean test accuracy {accuracy:.4f}")
    if several:
        png = os.path.join(args.out, CURVE_PNG)
        compare_runs(out_dirs, png)
        print(f"learning curves of {', '.join(names)}: {png}")


def _compare(args):
    from .experiment import compare_runs

    if args.summary and not args.baseline:
        raise _UsageError("skal compare: error: --summary needs --baseline")
    dirs = list(args.dirs)
    if args.baseline and os.path.abspath(args.baseline) not in map(os.path.abspath, dirs):
        dirs.insert(0, args.baseline)
    results = compare_runs(dirs, args.out, title=args.title)
    print(f"compared {len(results)} runs: {args.out}")
    if args.baseline:
        _print_labels_saved(args, results)


def _print_labels_saved(args, results):
    import json

    from .experiment import load_run
    from .experiment.plots import run_label
    from .experiment.savings import labels_saved

    base = load_run(args.baseline)
    name = run_label(base.config, True)  # "random + scratch"
    summary = []
    budgets = sorted({row["n_labeled"] for row in base.rows})
    for result in results:
        if os.path.abspath(result.out_dir) == os.path.abspath(base.out_dir):
            continue
        for budget in budgets:
            saved = labels_saved(base, result, reference=budget)
            saved["run"], saved["baseline"] = run_label(result.config), name
            summary.append(saved)
        if saved["mean_curve"] is None:
            line = "never reaches it"
        else:
            line = (f"reaches it with {saved['mean_curve']:.0f} labels (mean curve): "
                    f"{saved['ratio']:.2f}x fewer")
        per = ", ".join("never" if b is None else f"{b:.0f}" for b in saved["per_repeat"])
        paired = ("" if saved["mean"] is None else
                  f" (mean {saved['mean']:.0f} +- {saved['se']:.0f} over the {saved['reached']} "
                  "that reach it)")
        print(f"labels saved: {saved['run']} vs {name} at {saved['reference']} labels "
              f"(accuracy {saved['target']:.4f}): {line}; per repeat {per}{paired}")
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"labels saved written to {args.summary}")


_SKAL_DIR = os.path.dirname(os.path.abspath(__file__))


def _one_line_warnings(show):
    """``warnings.showwarning`` that shows skal's own warnings as one line (``skal: warning:
    ...``, no source line) and passes the others on to ``show``."""

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if os.path.abspath(filename).startswith(_SKAL_DIR + os.sep):
            print(f"skal: warning: {message}", file=sys.stderr if file is None else file)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


def main(argv=None):
    """Entry point of the ``skal`` command.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        0 on success, 2 on a usage or configuration error, 1 when training diverged, 130 when
        interrupted.
    """
    try:
        args = _build_parser().parse_args(argv)
        if args.command in ("run", "compare"):  # the experiment commands
            with flag_names(), warnings.catch_warnings():
                warnings.showwarning = _one_line_warnings(warnings.showwarning)
                args.handler(args)
        else:
            args.handler(args)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return _USAGE_ERROR
    except (ConfigError, DeviceError) as exc:
        print(f"skal: error: {exc}", file=sys.stderr)
        return _USAGE_ERROR
    except DivergenceError as exc:
        print(f"skal: error: {exc}", file=sys.stderr)
        return _FAILED
    except KeyboardInterrupt:
        print("skal: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    return 0
