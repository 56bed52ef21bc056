"""``skal label init | serve | train | batch | export | rescan | unlock | studio | annotator``: the
command line of a labelling project (``batch``: the current batch with the guesses' calibrated
confidences and expected seconds; ``studio``: Label Studio in and out; ``annotator``: a team's
names and tokens).

:func:`add_label_parser` adds the ``label`` command to ``skal``'s parser. Only argparse is imported
here; torch, the web framework and the project code are imported by the handlers, so that
``skal --help`` stays fast.
"""

import argparse
import functools
import sys

from ..exceptions import ConfigError

__all__ = ["add_label_parser"]

# Defaults repeated from skal.labeling.settings.DEFAULT_CONFIG, which imports numpy; a test checks
# that the two agree.
_DEFAULTS = {"batch_size": 20, "strategy": "bald", "model": "auto", "recipe": "scratch",
             "width": 16, "epochs": 10, "min_steps": 100,
             "train_batch_size": 32, "lr": 1e-3, "mc_samples": 20, "holdout": 0.2, "seed": 0,
             "device": "cpu", "overlap": 1, "aggregation": "majority", "assign_size": 10,
             "cost_aware": False, "cost_power": 0.5, "time_model": "class"}


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return value


def _non_negative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _image_size(text):
    parts = text.lower().split("x")
    try:
        size = [int(p) for p in parts]
    except ValueError:
        size = []
    if len(size) not in (1, 2) or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected N or HEIGHTxWIDTH (e.g. 64 or 48x64), got "
                                         f"{text!r}")
    return size[0] if len(size) == 1 else tuple(size)


def _port(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {text!r}")
    return value


def _store_url(text):
    if not text.startswith(("postgresql://", "postgres://")):
        raise argparse.ArgumentTypeError(f"expected a postgresql:// URL (the default store is "
                                         f"PROJECT/skal.db), got {text!r}")
    return text


def _add_store_option(parser, help_text=None):
    parser.add_argument("--store", type=_store_url, metavar="postgresql://...",
                        help=help_text or "the project's PostgreSQL store (default: the one "
                        "PROJECT/skal.store names, else PROJECT/skal.db)")


def _classes(text):
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated class names, got {text!r}")
    return names


def add_label_parser(commands):
    """Add the ``skal label`` command to ``skal``'s parser.

    Its subcommands are ``init``, ``serve``, ``train``, ``batch``, ``export``, ``rescan``,
    ``unlock``, ``annotator`` and ``studio``.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The sub-parsers of ``skal``'s parser.

    Returns
    -------
    argparse.ArgumentParser
        The ``label`` parser.
    """
    label = commands.add_parser(
        "label", help="label your own images, with a person as the oracle",
        description="A labelling project: a folder of images, a web page to label the batches "
                    "the model asks for, rounds of train + query, and an export of the labels.",
    )
    sub = label.add_subparsers(dest="label_command", required=True, parser_class=type(label))

    init = sub.add_parser("init", help="create a project from a folder of images",
                          description="Create PROJECT (a folder holding skal.db) from the images "
                                      "in DIR: loose images are unlabelled, images in "
                                      "sub-folders are labelled with the sub-folder's name.")
    init.add_argument("project", metavar="PROJECT")
    init.add_argument("--images", required=True, metavar="DIR", help="the image folder")
    init.add_argument("--classes", type=_classes, metavar="A,B,...",
                      help="class names (sub-folder names are added)")
    init.add_argument("--image-size", type=_image_size, metavar="N|HxW",
                      help="resize to this size for the model (needed when sizes differ)")
    init.add_argument("--color", choices=("gray", "rgb"), help="default: gray if all are gray")
    init.add_argument("--batch-size", type=_positive_int, default=_DEFAULTS["batch_size"],
                      help="images per query batch")
    init.add_argument("--strategy", default=_DEFAULTS["strategy"],
                      help="query strategy of skal.query by name (bald, entropy_sampling, ...)")
    init.add_argument("--model", choices=("auto", "resnet18", "waal"), default=_DEFAULTS["model"],
                      help="auto: WAAL for waal_* strategies, else ResNet18 with MC dropout")
    init.add_argument("--recipe", default=_DEFAULTS["recipe"], metavar="NAME",
                      help="training recipe (skal.recipe): scratch (a ResNet18 from random "
                           "weights), ssl-head (a SimCLR encoder fitted once on the project's "
                           "images at the first round, cached in PROJECT/encoder/, and an "
                           "MC-dropout head on its frozen features: seconds a round), "
                           "ssl-finetune, ssl-finetune+fixmatch, scratch+fixmatch")
    init.add_argument("--encoder-epochs", type=_positive_int, metavar="N",
                      help="recipes with an encoder: SimCLR epochs (default: the recipe's, 15)")
    init.add_argument("--encoder-width", type=_positive_int, metavar="N",
                      help="recipes with an encoder: its ResNet18 width (default: the "
                           "recipe's, 8)")
    init.add_argument("--encoder-stem-stride", type=int, choices=(1, 2),
                      help="recipes with an encoder: 2 halves the resolution in its stem "
                           "(twice the width at about the same cost; default: the recipe's, 1)")
    init.add_argument("--encoder-feature-stages", choices=("last", "all"),
                      help="recipes with an encoder: the head's features, the pooled last "
                           "ResNet stage or all four side by side (default: the recipe's, last)")
    init.add_argument("--width", type=_positive_int, default=_DEFAULTS["width"],
                      help="ResNet18 channels of the first stage")
    init.add_argument("--epochs", type=_positive_int, default=_DEFAULTS["epochs"],
                      help="training epochs per round")
    init.add_argument("--min-steps", type=int, default=_DEFAULTS["min_steps"],
                      help="at least this many gradient steps per round (more epochs when there "
                           "are few labels)")
    init.add_argument("--train-batch-size", type=_positive_int,
                      default=_DEFAULTS["train_batch_size"])
    init.add_argument("--lr", type=float, default=_DEFAULTS["lr"])
    init.add_argument("--mc-samples", type=_positive_int, default=_DEFAULTS["mc_samples"],
                      help="MC-dropout passes for BALD")
    init.add_argument("--subsample", type=_positive_int,
                      help="BALD scores a random subset of this many pool images")
    init.add_argument("--holdout", type=_fraction, default=_DEFAULTS["holdout"],
                      help="fraction of the labels held out for the learning curve")
    init.add_argument("--seed", type=int, default=_DEFAULTS["seed"])
    init.add_argument("--device", default=_DEFAULTS["device"], help="cpu, cuda, cuda:1, ...")
    init.add_argument("--overlap", type=_positive_int, default=_DEFAULTS["overlap"],
                      help="several annotators: each batch item goes to this many of them")
    init.add_argument("--aggregation", choices=("majority", "dawid_skene"),
                      default=_DEFAULTS["aggregation"],
                      help="the labels a round trains on when annotators disagree")
    init.add_argument("--assign-size", type=_positive_int, default=_DEFAULTS["assign_size"],
                      help="unanswered batch items an annotator holds at once")
    init.add_argument("--cost-aware", action="store_true",
                      help="rank by information per expected second of annotation, from the "
                           "recorded answer times (uncertainty_sampling, margin_sampling, "
                           "entropy_sampling, bald; cost-blind until 10 answers have a time)")
    init.add_argument("--cost-power", type=_non_negative, default=_DEFAULTS["cost_power"],
                      help="cost-aware: score / seconds ** POWER (1: per second; 0: cost-blind)")
    init.add_argument("--time-model", choices=("class", "regressor"),
                      default=_DEFAULTS["time_model"],
                      help="cost-aware: seconds from the mean time per class, or a regressor "
                           "on the model's probabilities")
    _add_store_option(init, "keep the project's store in this (empty) PostgreSQL database, "
                            "for a team server (default: PROJECT/skal.db, SQLite)")
    init.set_defaults(handler=_init)

    serve = sub.add_parser("serve", help="serve the labelling page",
                           description="Serve the labelling page of PROJECT. On any address but "
                                       "127.0.0.1 a token is required; it is printed once.")
    serve.add_argument("project", metavar="PROJECT")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; others need the token)")
    serve.add_argument("--port", type=_port, default=8000, help="0 picks a free port")
    serve.add_argument("--require-token", action="store_true",
                       help="require the token on 127.0.0.1 too")
    _add_store_option(serve)
    serve.set_defaults(handler=_serve)

    train = sub.add_parser("train", help="train and query the next batch, without the page")
    train.add_argument("project", metavar="PROJECT")
    train.add_argument("--strategy", help="default: the project's")
    train.add_argument("--cost-aware", action=argparse.BooleanOptionalAction, default=None,
                       help="this round: rank by information per expected second (or not); "
                            "default: the project's setting")
    train.set_defaults(handler=_train)

    batch = sub.add_parser(
        "batch", help="list the current batch: guesses, calibrated confidences, seconds",
        description="Print the current batch of PROJECT, best first: each image's path, the "
                    "model's guess with its calibrated confidence (or its uncalibrated one "
                    "when the round could fit no temperature), the expected seconds to label "
                    "it, and its answer.")
    batch.add_argument("project", metavar="PROJECT")
    _add_store_option(batch)
    batch.set_defaults(handler=_batch)

    export = sub.add_parser("export", help="write the labels out",
                            description="Write the labels of PROJECT as a CSV file "
                                        "(path,label,annotator,answered_at,sha256) or as an "
                                        "ImageFolder (one sub-folder per class).")
    export.add_argument("project", metavar="PROJECT")
    export.add_argument("--format", choices=("csv", "imagefolder", "answers"), default="csv",
                        help="csv: one label per image; answers: every annotator's answer "
                             "with its view_ms (CSV); imagefolder: a folder per class")
    export.add_argument("--out", help="default: PROJECT/labels.csv or PROJECT/export/")
    export.add_argument("--escape-formulas", action=argparse.BooleanOptionalAction, default=True,
                        help="CSV: make cells a spreadsheet could run as a formula inert (a path "
                             "gets './', an annotator \"'\"); --no-escape-formulas writes names "
                             "verbatim (default: escape)")
    export.set_defaults(handler=_export)

    rescan = sub.add_parser(
        "rescan", aliases=["add"], help="register new image files, retire missing ones",
        description="Bring PROJECT up to date with its image folder: new files are registered "
                    "(labelled with their sub-folder's name when it is a class), images whose "
                    "file left the folder are retired (their answers are kept; they leave the "
                    "pool, the batches, training and the exports), a registered image found "
                    "under another name moves there, and a retired image whose file is back is "
                    "in use again. Answers are never changed. 'add' is the same command.")
    rescan.add_argument("project", metavar="PROJECT")
    rescan.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    rescan.set_defaults(handler=_rescan)

    unlock = sub.add_parser(
        "unlock", help="clear a round left running by a process that is gone",
        description="Mark the rounds of PROJECT left 'running' by a process that no longer runs "
                    "them as 'interrupted' (the process running a round holds PROJECT/round.lock;"
                    " a round whose process still holds it is left alone: stop that process "
                    "first). Labels are not touched.")
    unlock.add_argument("project", metavar="PROJECT")
    unlock.set_defaults(handler=_unlock)
    _add_annotator_parser(sub)
    _add_studio_parser(sub)
    return label


def _user_errors(handler):
    """Report the user's mistakes (a missing folder, too few labels, ...) as ``skal`` reports
    configuration errors: one line on stderr and exit status 2."""
    @functools.wraps(handler)
    def wrapped(args):
        from .store import RoundRunningError

        try:
            return handler(args)
        except ConfigError:
            raise
        except (ValueError, FileNotFoundError, FileExistsError, KeyError,
                RoundRunningError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ConfigError(str(message)) from None
    return wrapped


def _open(path, store=None):
    from .project import Project

    return Project(path, store=store)


def _add_annotator_parser(sub):
    annotator = sub.add_parser(
        "annotator", help="register the annotators of a team (each gets a token)",
        description="Several annotators: 'add' registers a name and prints its token once (only "
                    "its hash is stored) with the link that signs a browser in; a registered "
                    "name answers only with its token. 'remove' revokes it (the answers stay); "
                    "'list' shows them.")
    actions = annotator.add_subparsers(dest="annotator_command", required=True,
                                       parser_class=type(annotator))
    add = actions.add_parser("add", help="register NAME and print its token")
    add.add_argument("project", metavar="PROJECT")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--replace", action="store_true",
                     help="give a registered (or removed) NAME a new token")
    add.add_argument("--url", default="http://127.0.0.1:8000/",
                     help="the page's address, for the printed link")
    _add_store_option(add)
    add.set_defaults(handler=_annotator_add)
    remove = actions.add_parser("remove", help="revoke NAME's token (the answers stay)")
    remove.add_argument("project", metavar="PROJECT")
    remove.add_argument("name", metavar="NAME")
    _add_store_option(remove)
    remove.set_defaults(handler=_annotator_remove)
    listing = actions.add_parser("list", help="the registered annotators and their answers")
    listing.add_argument("project", metavar="PROJECT")
    _add_store_option(listing)
    listing.set_defaults(handler=_annotator_list)


@_user_errors
def _annotator_add(args):
    import urllib.parse

    with _open(args.project, args.store) as project:
        token = project.add_annotator(args.name, replace=args.replace)
    base = args.url if args.url.endswith("/") else args.url + "/"
    print(f"annotator {args.name}: token {token} (shown this once; only its hash is stored)")
    print(f"their link (it signs the browser in): {base}?annotator_token="
          f"{urllib.parse.quote(token)}")


@_user_errors
def _annotator_remove(args):
    with _open(args.project, args.store) as project:
        project.remove_annotator(args.name)
    print(f"annotator {args.name}: token revoked; their answers are kept")


@_user_errors
def _annotator_list(args):
    import datetime

    with _open(args.project, args.store) as project:
        counts = {}
        for r in project.store.votes():
            counts[r["annotator"]] = counts.get(r["annotator"], 0) + 1
        registered = {a["name"]: a for a in project.annotators()}
        for name in sorted(set(registered) | set(counts)):
            a = registered.get(name)
            if a is None:
                state = "by name"
            elif a["removed_at"] is not None:
                state = "removed"
            else:
                when = datetime.datetime.fromtimestamp(a["created_at"], datetime.timezone.utc)
                state = f"token since {when.isoformat(timespec='seconds')}"
            print(f"{name}\t{state}\t{counts.get(name, 0)} answered images")


@_user_errors
def _init(args):
    import warnings

    from .project import Project

    settings = {k: getattr(args, k) for k in (
        "batch_size", "strategy", "model", "recipe", "encoder_epochs", "encoder_width",
        "encoder_stem_stride", "encoder_feature_stages", "width",
        "epochs", "min_steps", "train_batch_size", "lr", "mc_samples", "subsample", "holdout",
        "seed", "device", "overlap", "aggregation", "assign_size", "cost_aware", "cost_power",
        "time_model")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            project = Project.init(args.project, args.images, args.classes,
                                   image_size=args.image_size, color=args.color,
                                   store=args.store, **settings)
        except FileExistsError as exc:
            raise ValueError(str(exc)) from None
    for w in caught:
        print(f"skal label init: warning: {w.message}", file=sys.stderr)
    with project:
        n = len(project.store.images())
        counts = project.label_counts()
        config = project.config
        h, w = config["image_size"]
        print(f"project {project.path}: {n} images ({config['channels']}x{h}x{w} for the model), "
              f"classes {', '.join(project.classes)}; {sum(counts.values())} labelled from "
              f"sub-folders; first batch of {len(project.next_batch())} images ready.")
        if config.get("recipe", "scratch") != "scratch":
            from .settings import project_recipe

            recipe = project_recipe(config)
            if recipe.uses_encoder:
                stride = (f", stem stride {recipe.encoder_stem_stride}"
                          if recipe.encoder_stem_stride != 1 else "")
                print(f"recipe {recipe.name}: the first round fits a SimCLR encoder (width "
                      f"{recipe.encoder_width}{stride}, {recipe.encoder_epochs} epochs) on the {n} "
                      f"images, cached in {project.path}/encoder/")
        print(f"next: skal label serve {args.project}")


@_user_errors
def _serve(args):
    try:
        from .app import make_server
    except ImportError as exc:
        raise ValueError(
            f"skal label serve needs the web extra ({exc.name} is missing): pip install "
            "'skal[label]'"
        ) from None
    project = _open(args.project, args.store)
    try:
        server, sock, url, token = make_server(project, args.host, args.port,
                                               require_token=args.require_token)
    except OSError as exc:
        raise ValueError(f"could not listen on {args.host}:{args.port}: {exc}") from None
    print(f"skal label: serving {project.path} at {url}", flush=True)
    if args.host in ("0.0.0.0", "::", ""):
        print(f"skal label: listening on every address of this machine ({args.host}); if the "
              "name in that URL does not resolve on the other machine, replace it with this "
              "machine's IP address", flush=True)
    if token:  # printed this once, inside the URL, and nowhere else
        print("skal label: a token is required on this address; the URL above carries it (it "
              "sets a cookie), or send it as the X-Skal-Token header", flush=True)
    print("skal label: press Ctrl+C to stop", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        project.close()


@_user_errors
def _train(args):
    project = _open(args.project)
    with project:
        def progress(phase, done, total):
            if phase == "training" and done:
                print(f"  epoch {done}/{total}", flush=True)
        result = project.train_and_query(args.strategy, progress=progress,
                                         cost_aware=args.cost_aware)
        acc = result["accuracy"]
        acc_text = "n/a (nothing held out)" if acc is None else f"{acc:.4f}"
        print(f"round {result['id']} ({result['strategy']}): trained on {result['n_train']} "
              f"labels, held-out accuracy {acc_text} on {result['n_holdout']}; next batch of "
              f"{len(project.next_batch())} images; model {result['checkpoint']}")
        from .batch_report import load_report

        print(_batch_line(load_report(project.path, result["id"])))


def _batch_line(report):
    """One line on how a round queried: cost-aware or not, seconds, calibrated or not."""
    if report is None:
        return "batch: no report"
    if report["cost_aware"]:
        how = (f"cost-aware (score / seconds ** {report['cost_power']:g}, {report['time_model']} "
               f"time model on {report['n_timed']} timed answers)")
    else:
        how = report["note"] or "cost-blind"
    if report["seconds_per_image"] is not None:
        how += f"; about {report['seconds_per_image']:.1f} s per image expected"
    calibrated = (f"calibrated (temperature {report['temperature']:.2f})"
                  if report["calibrated"] else "uncalibrated (no temperature: fewer than 4 "
                                              "held-out labels)")
    return f"batch: {how}; guesses {calibrated}"


@_user_errors
def _batch(args):
    from .batch_report import load_report

    with _open(args.project, args.store) as project:
        items = project.next_batch()
        latest = project.store.latest_done_round()
        if latest is None or not items:
            print("no batch: every image is answered, or no round has finished")
            return
        print(f"round {latest['id']} ({latest['strategy']}): "
              + _batch_line(load_report(project.path, latest["id"])))
        for it in items:
            if it.guess is None:
                guess = "no model yet"
            elif it.calibrated:
                guess = f"{it.guess} {it.calibrated_confidence:.0%} calibrated"
            else:
                guess = f"{it.guess} {it.confidence:.0%} uncalibrated"
            seconds = "" if it.expected_seconds is None else f"~{it.expected_seconds:.1f} s"
            answer = it.label if it.answer == "label" else (it.answer or "")
            print(f"{it.path}\t{guess}\t{seconds}\t{answer}")


@_user_errors
def _export(args):
    import os

    project = _open(args.project)
    with project:
        default = {"csv": "labels.csv", "answers": "answers.csv"}.get(args.format, "export")
        out = args.out or os.path.join(project.path, default)
        try:
            if args.format == "answers":
                n = project.export_answers(out, escape_formulas=args.escape_formulas)
            elif args.format == "csv":
                n = project.export_csv(out, escape_formulas=args.escape_formulas)
            else:
                n = project.export_imagefolder(out)
        except FileExistsError as exc:
            raise ValueError(str(exc)) from None
        print(f"exported {n} labels to {out}")


def _names(paths, limit=10):
    shown = ", ".join(" -> ".join(p) if isinstance(p, tuple) else p for p in paths[:limit])
    return shown + (f", ... ({len(paths) - limit} more)" if len(paths) > limit else "")


@_user_errors
def _rescan(args):
    import warnings

    project = _open(args.project)
    with project:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = project.rescan(dry_run=args.dry_run)
        for w in caught:
            print(f"skal label rescan: warning: {w.message}", file=sys.stderr)
        parts = [("added", report.added), ("moved", report.moved),
                 ("restored", report.restored), ("retired (answers kept)", report.retired),
                 ("changed (retired, answers kept)", report.changed),
                 ("duplicate(s) not registered", report.duplicates),
                 ("refused", report.refused)]
        summary = ", ".join(f"{len(paths)} {what}" for what, paths in parts)
        if report.dry_run:
            print(f"rescan of {project.image_root} (dry run: nothing was written): would be "
                  f"{summary}")
        else:
            print(f"rescan of {project.image_root}: {summary}")
        for what, paths in parts:
            if paths:
                print(f"  {what.split(' ')[0]}: {_names(paths)}")
        if not report.dry_run:
            print(f"{len(project.store.images())} images in use")


@_user_errors
def _unlock(args):
    from .project import Project
    from .store import LabelStore, project_store

    location = project_store(args.project)
    if location is None:
        Project(args.project)  # raises the usual "is not a skal labelling project" error
    store = LabelStore(location, lock_dir=args.project)  # (Project() would unlock on open)
    try:
        running = {r["id"]: r for r in store.rounds() if r["status"] == "running"}
        ids = store.unlock()
    finally:
        store.close()
    if not ids:
        print("no round is running; nothing to unlock")
    for i in ids:
        r = running.get(i)
        who = f" (process {r['pid']} on {r['host']})" if r is not None else ""
        print(f"round {i}{who} was not running any more: marked interrupted")


# ---------------------------------------------------------------------------- skal label studio
def _add_studio_parser(sub):
    """``skal label studio export | import | sync``: Label Studio in and out."""
    studio = sub.add_parser(
        "studio", help="Label Studio in and out: tasks with predictions, annotations back",
        description="Exchange a project's batch and answers with Label Studio. Images are "
                    "served by Label Studio's local-files storage from the image folder "
                    "(start it with LOCAL_FILES_SERVING_ENABLED=true and "
                    "LOCAL_FILES_DOCUMENT_ROOT set to a folder above the image folder). The "
                    "server's URL and API key may come from LABEL_STUDIO_URL and "
                    "LABEL_STUDIO_API_KEY; the key is never printed.")
    commands = studio.add_subparsers(dest="studio_command", required=True,
                                     parser_class=type(studio))

    def common(parser, server_help):
        parser.add_argument("project", metavar="PROJECT")
        parser.add_argument("--url", help=server_help + " (default: $LABEL_STUDIO_URL)")
        parser.add_argument("--api-key", help="the Label Studio API key (a legacy token or a "
                                              "personal access token; default: "
                                              "$LABEL_STUDIO_API_KEY, which keeps it out of the "
                                              "process list)")
        parser.add_argument("--title", help="the Label Studio project's title (default: 'skal: "
                                            "<project folder name>')")

    export = commands.add_parser(
        "export", help="the current batch as Label Studio tasks (a file, or pushed)",
        description="Write the current batch of PROJECT as Label Studio tasks (JSON), with the "
                    "latest round's predictions; with --url push them to the server instead.")
    common(export, "push the tasks to this Label Studio server instead of writing a file")
    export.add_argument("--out", metavar="FILE", help="the JSON file to write (default: "
                                                      "PROJECT/label-studio-tasks.json)")
    export.add_argument("--all", action="store_true",
                        help="every image in use, not only the current batch")
    export.add_argument("--document-root", metavar="DIR",
                        help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT, above the image folder "
                             "(default: $LOCAL_FILES_DOCUMENT_ROOT, else the image folder's "
                             "parent)")
    export.set_defaults(handler=_studio_export)

    imp = commands.add_parser(
        "import", help="Label Studio annotations into the project's answers",
        description="Record the annotations of a Label Studio JSON export (FILE) or of the "
                    "server's project (--url) as answers of PROJECT. Importing again adds "
                    "nothing; the whole export is checked before anything is written.")
    common(imp, "pull the annotations from this Label Studio server")
    imp.add_argument("file", nargs="?", metavar="FILE", help="a Label Studio JSON export")
    imp.set_defaults(handler=_studio_import)

    sync = commands.add_parser(
        "sync", help="create/update the Label Studio project, push the batch, pull answers",
        description="Create (or update) the Label Studio project of PROJECT with a label "
                    "config of its classes, connect the image folder as local storage, push "
                    "the current batch with the latest round's predictions (removing older "
                    "rounds' predictions) and import the new annotations.")
    common(sync, "the Label Studio server")
    sync.add_argument("--document-root", metavar="DIR",
                      help="the server's LOCAL_FILES_DOCUMENT_ROOT (see 'export')")
    sync.set_defaults(handler=_studio_sync)


def _studio_client(args, required):
    """The client of --url / --api-key (or their environment variables), or None when no URL
    was given and ``required`` is False."""
    import os

    from .label_studio import API_KEY_ENV, URL_ENV, LabelStudioClient

    url = args.url or os.environ.get(URL_ENV)
    if not url:
        if required:
            raise ValueError(f"--url is required (or set {URL_ENV}): the Label Studio server, "
                             "e.g. http://127.0.0.1:8080.")
        return None
    key = args.api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise ValueError(f"--api-key is required with --url (or set {API_KEY_ENV}): the API "
                         "key of your Label Studio account (Account & Settings).")
    try:
        return LabelStudioClient(url, key)
    except ValueError as exc:
        raise ValueError(str(exc).replace("The 'url' parameter", "--url")
                         .replace("The 'api_key' parameter", "--api-key")) from None


def _studio_errors(handler):
    """A Label Studio error is a one-line user error too (the key is never in it)."""
    @functools.wraps(handler)
    def wrapped(args):
        from .label_studio import LabelStudioError

        try:
            return handler(args)
        except LabelStudioError as exc:
            raise ValueError(str(exc)) from None
    return _user_errors(wrapped)


def _flag_names(exc):
    return ValueError(str(exc).replace("The 'document_root' parameter", "--document-root")
                      .replace("The 'images' parameter", "--all"))


def _sync_line(report, client):
    r = report.imported
    state = "created" if report.created else "found"
    return (f"Label Studio project {report.project_id} ({state}) at "
            f"{client.url.rstrip('/')}/projects/{report.project_id}: "
            f"{report.tasks_created} task(s) created, {report.tasks_updated} updated, "
            f"{report.predictions_added} prediction(s) "
            f"pushed, {report.predictions_removed} of older rounds removed; "
            + _import_line(r))


def _import_line(r):
    held = (f"; {len(r.retired)} left in Label Studio: their image is retired (rescan once the "
            "file is back)" if r.retired else "")
    return (f"{len(r.added)} answer(s) imported ({len(r.skipped)} skip(s)), {len(r.unchanged)} "
            f"already imported, {r.tasks_without_annotations} task(s) not annotated yet{held}")


@_studio_errors
def _studio_export(args):
    import os

    from . import label_studio

    client = _studio_client(args, required=False)
    if client is not None and args.out:
        raise ValueError("give --out (write a file) or --url (push to a server), not both.")
    project = _open(args.project)
    with project:
        images = [r["id"] for r in project.store.images()] if args.all else None
        try:
            if client is None:
                out = args.out or os.path.join(project.path, "label-studio-tasks.json")
                n = label_studio.write_tasks(project, out, images,
                                             document_root=args.document_root)
                print(f"wrote {n} Label Studio task(s) to {out}")
                return
            report = label_studio.sync(project, client, title=args.title, images=images,
                                       document_root=args.document_root, pull=False)
        except ValueError as exc:
            raise _flag_names(exc) from None
        print(_sync_line(report, client).split("; ")[0])


@_studio_errors
def _studio_import(args):
    from . import label_studio

    client = _studio_client(args, required=False)
    if (client is None) == (args.file is None):
        raise ValueError("give a Label Studio JSON export FILE or --url (pull from a server), "
                         "one of them.")
    project = _open(args.project)
    with project:
        if client is None:
            report = label_studio.import_annotations(project, args.file)
        else:
            report = label_studio.sync(project, client, title=args.title, push=False).imported
        print(_import_line(report))


@_studio_errors
def _studio_sync(args):
    from . import label_studio

    client = _studio_client(args, required=True)
    project = _open(args.project)
    with project:
        try:
            report = label_studio.sync(project, client, title=args.title,
                                       document_root=args.document_root)
        except ValueError as exc:
            raise _flag_names(exc) from None
        print(_sync_line(report, client))
