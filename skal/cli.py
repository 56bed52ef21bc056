"""The ``skal`` command: run simulated active-learning experiments and compare them.

``skal run`` runs one experiment per method (see :func:`skal.experiment.run_experiment`) and
resumes it when run again with the same output folder; ``skal compare`` overlays the learning
curves of finished runs. Wrong input ends with a one-line message on stderr and exit status 2.
"""

import argparse
import os
import sys

from . import __version__
from .experiment import CURVE_PNG, METHODS, ExperimentConfig, compare_runs, run_experiment
from .labeling.cli import add_label_parser

__all__ = ["main"]

_USAGE_ERROR = 2


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


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


_positive = _int_at_least(1)


def _add_run_parser(commands):
    run = commands.add_parser(
        "run", help="run (or resume) an active-learning experiment",
        description="Run a simulated-oracle active-learning experiment; run it again with the "
                    "same --out to resume after an interruption.",
    )
    defaults = ExperimentConfig()
    run.add_argument("--dataset", default=defaults.dataset,
                     help="digits, fashion_mnist, or the path of an image folder (one sub-folder "
                          "per class) or .npz file (X, y)")
    run.add_argument("--test", metavar="PATH",
                     help="test set for a --dataset path (default: hold out a quarter)")
    run.add_argument("--image-size", type=_positive, help="resize an image folder's images")
    run.add_argument("--method", default=defaults.method,
                     help=f"query method: {', '.join(sorted(METHODS))}")
    run.add_argument("--methods", help="several methods, comma-separated; each runs in OUT/METHOD")
    run.add_argument("--n-initial", type=_positive, default=defaults.n_initial)
    run.add_argument("--query-size", type=_positive, default=defaults.query_size)
    run.add_argument("--rounds", type=_int_at_least(0), default=defaults.n_rounds,
                     help="acquisition rounds (the run records rounds 0..ROUNDS)")
    run.add_argument("--repeats", type=_positive, default=defaults.repeats)
    run.add_argument("--seed", type=_int_at_least(0), default=defaults.seed)
    run.add_argument("--pool-size", type=_positive, help="subsample the train split (default: all)")
    run.add_argument("--test-size", type=_positive, help="subsample the test split (default: all)")
    run.add_argument("--width", type=_positive, default=defaults.width,
                     help="ResNet18 channels of the first stage (64: the standard ResNet18)")
    run.add_argument("--preact", action="store_true", help="pre-activation ResNet18")
    run.add_argument("--epochs", type=_positive, default=defaults.max_epochs,
                     help="training epochs per round")
    run.add_argument("--min-steps", type=_int_at_least(0), default=defaults.min_steps,
                     help="at least this many gradient steps per round (more epochs for small "
                          "labelled sets)")
    run.add_argument("--batch-size", type=_positive, default=defaults.batch_size)
    run.add_argument("--lr", type=_positive_float, default=defaults.lr)
    run.add_argument("--lr-schedule", choices=("constant", "cosine"),
                     default=defaults.lr_schedule, help="learning rate schedule within a round")
    run.add_argument("--mc-samples", type=_positive, default=defaults.n_mc_samples,
                     help="MC-dropout passes for BALD")
    run.add_argument("--subsample", type=_positive,
                     help="BALD scores a random subset of this many pool samples per query")
    run.add_argument("--warm-start", action="store_true",
                     help="continue training between rounds instead of restarting")
    run.add_argument("--device", default=defaults.device, help="cpu, cuda, cuda:1, ...")
    run.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    run.add_argument("--quiet", action="store_true", help="no progress bars or per-round lines")
    run.set_defaults(handler=_run)


def _add_compare_parser(commands):
    compare = commands.add_parser(
        "compare", help="overlay the learning curves of several runs",
        description="Overlay the learning curves of finished (or partial) runs in one PNG. A "
                    "folder made by 'skal run --methods' adds all its runs.",
    )
    compare.add_argument("dirs", nargs="+", metavar="DIR", help="run folders")
    compare.add_argument("--out", default="compare.png", help="PNG to write")
    compare.add_argument("--title", help="plot title")
    compare.set_defaults(handler=_compare)


def _build_parser():
    parser = _Parser(prog="skal", description="Deep active learning experiments.")
    parser.add_argument("--version", action="version", version=f"skal {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run_parser(commands)
    _add_compare_parser(commands)
    add_label_parser(commands)
    return parser


def _methods(args):
    names = args.methods.split(",") if args.methods else [args.method]
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise _UsageError("skal run: error: --methods names no method")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise _UsageError(
            f"skal run: error: unknown method {unknown[0]!r}; expected one of: "
            f"{', '.join(sorted(METHODS))}"
        )
    return names


def _config(args, method):
    return ExperimentConfig(
        dataset=args.dataset, test=args.test, image_size=args.image_size, method=method, n_initial=args.n_initial,
        query_size=args.query_size, n_rounds=args.rounds, repeats=args.repeats, seed=args.seed,
        pool_size=args.pool_size, test_size=args.test_size, width=args.width,
        preact=args.preact, max_epochs=args.epochs, min_steps=args.min_steps,
        batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
        n_mc_samples=args.mc_samples, subsample=args.subsample, warm_start=args.warm_start,
        device=args.device,
    )


def _run(args):
    names = _methods(args)
    several = args.methods is not None
    configs = [_config(args, name) for name in names]  # validate all before running any
    out_dirs = [os.path.join(args.out, name) if several else args.out for name in names]
    for config, out_dir in zip(configs, out_dirs):
        result = run_experiment(config, out_dir, progress=not args.quiet)
        print(f"{config.method}: results in {out_dir}")
        for n_labeled, accuracy in result.mean_accuracy().items():
            print(f"  {n_labeled:6d} labels: mean test accuracy {accuracy:.4f}")
    if several:
        png = os.path.join(args.out, CURVE_PNG)
        compare_runs(out_dirs, png)
        print(f"learning curves of {', '.join(names)}: {png}")


def _compare(args):
    results = compare_runs(args.dirs, args.out, title=args.title)
    print(f"compared {len(results)} runs: {args.out}")


def main(argv=None):
    """Entry point of the ``skal`` command.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        0 on success, 2 on a usage or configuration error, 130 when interrupted.
    """
    try:
        args = _build_parser().parse_args(argv)
        args.handler(args)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return _USAGE_ERROR
    except (ValueError, FileNotFoundError) as exc:
        print(f"skal: error: {exc}", file=sys.stderr)
        return _USAGE_ERROR
    except KeyboardInterrupt:
        print("skal: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    return 0
