"""What defines an experiment: :class:`ExperimentConfig`, its fields and how each is checked.

This module imports neither torch nor scikit-learn, so that ``skal --help`` can build its options
from the fields (their ``metadata`` holds the command-line flag, the help text and the checks)
without loading a network library. Which method uses which option is declared by the method
(:class:`skal.experiment.Method`); the registry is imported only when a configuration is built.
"""

import contextlib
import contextvars
import dataclasses
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigError
from ..utils.seeds import derive_seed

__all__ = ["BUILTIN_METHODS", "BUILTIN_RECIPES", "ExperimentConfig", "derive_seed",
           "option_fields"]

# True while the ``skal`` command runs: messages name its flags instead of the fields
_FLAG_NAMES = contextvars.ContextVar("skal_flag_names", default=False)

#: One line per built-in method (for ``skal run --help``; the registry itself lives in
#: :mod:`skal.experiment.methods`, which imports the estimators).
BUILTIN_METHODS = {
    "random": "random sampling with a ResNet18 (the baseline)",
    "uncertainty": "least-confidence sampling, 1 - max_k p_k, with a ResNet18",
    "margin": "smallest margin between the two most likely classes, with a ResNet18",
    "entropy": "highest predictive entropy, with a ResNet18",
    "bald": "BALD: mutual information of label and weights from MC-dropout passes (ResNet18)",
    "waal": "WAAL: uncertainty + critic diversity, trained on the unlabelled pool too",
    "bgadl": "BGADL: BALD with a ResNet18 trained jointly with a VAE-ACGAN (generated images)",
    "random_gen": "random sampling with BGADL's joint VAE-ACGAN training (the paper's control)",
}

#: One line per built-in recipe (for ``skal run --help``; the recipes themselves live in
#: :mod:`skal.recipe`). ``NAME+fixmatch`` / ``NAME+pseudo_label`` add semi-supervised training.
BUILTIN_RECIPES = {
    "scratch": "ResNet18 from random weights (the default; skal without a recipe)",
    "ssl-head": "SimCLR encoder fitted on the pool, frozen + an MC-dropout MLP head (badge)",
    "ssl-finetune": "ResNet18 whose trunk starts from the SimCLR encoder (margin)",
    "ssl-finetune+fixmatch": "the same, trained with FixMatch on the unlabelled pool too",
}

_SEMI_SUPERVISED = ("none", "fixmatch", "pseudo_label")
_ENCODER_FIELDS = ("encoder_width", "encoder_epochs", "encoder_batch_size", "encoder_stem_stride",
                   "encoder_feature_stages")

#: The learning rate of methods that declare none (Adam's, for the ResNet18 methods).
DEFAULT_LR = 1e-3

_LR_SCHEDULES = ("constant", "cosine")


def _option(default, help, *, flag=None, kind="int", low=None, choices=None, shown=None):
    """A configuration field with what the CLI and the validation need in its metadata.

    ``kind`` is "int", "float", "bool", "str" or "choice"; ``low`` the smallest valid value
    (for "float", values must be > low); a None default makes the field optional (None allowed).
    ``shown`` is the default as ``--help`` prints it.
    """
    return field(default=default, metadata={
        "help": help, "flag": flag, "kind": kind, "low": low, "choices": choices, "shown": shown,
    })


def option_fields():
    """Return the fields of :class:`ExperimentConfig` in declaration order.

    Returns
    -------
    tuple of dataclasses.Field
        Each with its command-line metadata.
    """
    return dataclasses.fields(ExperimentConfig)


def flag_of(name):
    """The command-line flag of configuration field ``name`` (``n_rounds`` -> ``--rounds``)."""
    f = ExperimentConfig.__dataclass_fields__[name]
    return f.metadata.get("flag") or "--" + name.replace("_", "-")


@contextlib.contextmanager
def flag_names():
    """Within it, messages about configuration fields name the ``skal run`` flags."""
    token = _FLAG_NAMES.set(True)
    try:
        yield
    finally:
        _FLAG_NAMES.reset(token)


def option_name(name):
    """``"lr"``, or ``"--lr"`` within :func:`flag_names` (the ``skal`` command)."""
    return flag_of(name) if _FLAG_NAMES.get() else name


def option_setting(name, value):
    """``"lr=1000"``, or ``"--lr 1000"`` within :func:`flag_names`; ``value`` as written."""
    return f"{flag_of(name)} {value}" if _FLAG_NAMES.get() else f"{name}={value}"


def or_none():
    """``" or None"`` for the Python API; nothing for the ``skal`` command, which has no None."""
    return "" if _FLAG_NAMES.get() else " or None"


def option_subject(name):
    """``"The 'lr' parameter of ExperimentConfig"``, or ``"The --lr option"``."""
    if _FLAG_NAMES.get():
        return f"The {flag_of(name)} option"
    return f"The '{name}' parameter of ExperimentConfig"


def _fail(name, expected, value):
    raise ConfigError(f"{option_subject(name)} must be {expected}. Got {value!r} instead.")


def _check_field(f, value):
    """Check one field against its declared kind and range (None allowed for optional ones)."""
    meta = f.metadata
    kind, low = meta["kind"], meta["low"]
    optional = f.default is None
    if value is None and optional:
        return
    suffix = or_none() if optional else ""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            _fail(f.name, f"an int >= {low}{suffix}", value)
    elif kind == "float":
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value) or (low is not None and not value > low)):
            bound = "" if low is None else f" > {low}"
            _fail(f.name, f"a float{bound}{suffix}", value)
    elif kind == "bool":
        if not isinstance(value, bool):
            _fail(f.name, "a bool", value)
    elif kind == "choice":
        numeric = isinstance(meta["choices"][0], int)  # (1, 2): 2.0 and True are not choices
        if (value not in meta["choices"] or isinstance(value, bool)
                or (numeric and not isinstance(value, numbers.Integral))):
            _fail(f.name, f"one of {meta['choices']}", value)
    elif kind == "str":
        if not isinstance(value, str) or not value:
            _fail(f.name, f"a non-empty str{suffix}", value)


def is_data_path(path):
    """Whether ``path`` names an image folder or an .npy / .npz file (a data set path)."""
    return isinstance(path, str) and (
        os.path.isdir(path) or (os.path.isfile(path) and path.lower().endswith((".npy", ".npz"))))


def label_budget():
    """``"n_initial + n_rounds * query_size"`` in the current naming (see :func:`flag_names`)."""
    n_initial, n_rounds, query_size = map(option_name, ("n_initial", "n_rounds", "query_size"))
    return f"{n_initial} + {n_rounds} * {query_size}"


def _is(name, value):
    """``"pool_size=25"``, or ``"--pool-size is 25"`` for the ``skal`` command."""
    return f"{flag_of(name)} is {value}" if _FLAG_NAMES.get() else f"{name}={value}"


def _check_path(name, value, expected):
    """Refuse a ``dataset`` / ``test`` value that is a path to nothing or to the wrong kind."""
    if not isinstance(value, str) or is_data_path(value):
        return
    looks_like_path = (os.sep in value or "/" in value
                       or value.lower().endswith((".npy", ".npz")))
    if os.path.exists(value):
        raise ConfigError(f"{option_subject(name)} names {value!r}, which is neither an image "
                          f"folder nor a .npy / .npz file. {expected}")
    if looks_like_path:
        raise ConfigError(f"{option_subject(name)} names no such file or folder: {value!r}. "
                          f"{expected}")


def _lookup_method(name):
    from .methods import METHODS  # imports the estimators: only when a config is built

    if not isinstance(name, str) or name not in METHODS:
        raise _unknown_name("method", name, sorted(METHODS))
    return METHODS[name]


def _lookup_recipe(config):
    """The :class:`skal.recipe.Recipe` of a configuration, with its ``encoder_*`` and
    ``semi_supervised`` fields applied (a ConfigError naming the options otherwise)."""
    # numpy and scikit-learn: only when a config is built
    from .. import recipe as recipes

    name = config.recipe
    if not isinstance(name, str):
        _fail("recipe", "a str", name)
    try:
        base = recipes.get_recipe(name)
    except ValueError:
        known = ", ".join(repr(n) for n in recipes.recipe_names())
        raise ConfigError(f"Unknown recipe {name!r}. Expected one of: {known} (or "
                          "NAME+fixmatch, NAME+pseudo_label).") from None
    overrides = {k: getattr(config, k) for k in _ENCODER_FIELDS if getattr(config, k) is not None}
    fields = {f.name: f for f in option_fields()}
    for key, value in overrides.items():  # in this class's words, before the recipe's check
        _check_field(fields[key], value)
    if overrides and not base.uses_encoder:
        key = next(iter(overrides))
        raise ConfigError(f"{option_subject(key)} does not apply to "
                          f"{option_setting('recipe', name)}, which trains no encoder.")
    semi = config.semi_supervised
    if semi is not None and semi != base.semi_supervised:
        if base.training == "head" and semi != "none":
            raise ConfigError(
                f"{option_setting('semi_supervised', semi)} does not apply to "
                f"{option_setting('recipe', name)}: FixMatch and pseudo-labelling train an "
                "image network, the head learns on frozen features; use "
                f"{option_setting('recipe', 'ssl-finetune')}.")
        overrides["semi_supervised"] = semi
    return recipes.get_recipe(base, **overrides)


def _check_recipe_method(config, method):
    """Refuse a recipe for a method whose estimator factory takes no encoder (WAAL, BGADL)."""
    from ..utils.validation import accepts  # loaded with the methods' registry already

    if not accepts(method.make_estimator, "encoder"):
        raise ConfigError(
            f"{option_setting('recipe', config.recipe)} does not apply to "
            f"{option_setting('method', config.method)}, which trains its own estimator; "
            "recipes apply to the ResNet18 methods "
            "(random, margin, entropy, bald, badge, typiclust, ...).")


def _unknown_name(kind, value, valid):
    names = ", ".join(repr(v) for v in valid)
    return ConfigError(f"Unknown {kind} {value!r}. Expected one of: {names}.")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines an active-learning experiment (and nothing that does not).

    Fields that the method does not use (e.g. ``width`` for ``"waal"``, ``n_mc_samples`` for
    ``"random"``, see :attr:`skal.experiment.Method.ignores`) are stored as None, whatever was
    passed, so ``config.json`` shows what the run really used and one dict of settings can serve
    several methods; the ``skal`` command refuses an option that none of its methods uses.
    Invalid values raise :class:`skal.exceptions.ConfigError` (a ``ValueError``).

    Parameters
    ----------
    dataset : str, default="fashion_mnist"
        One of :data:`skal.datasets.DATASETS`, or the path of an image folder (one sub-folder per
        class) or of a ``.npz`` file with images and labels: the simulated oracle reads its
        labels.
    test : str or None, default=None
        For a ``dataset`` path: an image folder or ``.npz`` file to test on. None holds out a
        stratified quarter of the data (``test_size`` samples when given).
    image_size : int or None, default=None
        For an image folder: resize the images to ``image_size`` x ``image_size``.
    method : str or None, default=None
        One of :data:`skal.experiment.METHODS`; None: the recipe's (``"bald"`` for
        ``"scratch"``, ``"badge"`` for ``"ssl-head"``).
    recipe : str, default="scratch"
        How the classifier is trained, one of :data:`skal.recipe.RECIPES` (``"scratch"``,
        ``"ssl-head"``, ``"ssl-finetune"``, ``"ssl-finetune+fixmatch"``, ...; see
        :mod:`skal.recipe`). A recipe with an encoder fits a SimCLR
        :class:`skal.ContrastiveEncoder` on each repeat's pool once (cached in the run folder's
        ``encoders/``); it applies to the ResNet18 methods, not to ``"waal"``, ``"bgadl"`` or
        ``"random_gen"``, and ``width`` and ``preact`` do not apply to it (stored as None).
    encoder_width : int or None, default=None
        Recipes with an encoder: the encoder's width (None: the recipe's, 8).
    encoder_epochs : int or None, default=None
        Recipes with an encoder: its SimCLR epochs (None: the recipe's, 15).
    encoder_batch_size : int or None, default=None
        Recipes with an encoder: its SimCLR batch size (None: the recipe's, 256).
    encoder_stem_stride : {1, 2} or None, default=None
        Recipes with an encoder: 2 halves the resolution in the encoder's stem, so a trunk of
        twice the width costs about what the stride-1 one does (None: the recipe's, 1). The
        ``"finetune"`` recipes' classifier takes the encoder's stride.
    encoder_feature_stages : {"last", "all"} or None, default=None
        Recipes with an encoder: the features the head is trained on, the pooled last ResNet
        stage or the four stages side by side (:class:`skal.ContrastiveEncoder`'s
        ``feature_stages``; None: the recipe's, ``"last"``). The encoder's training is the same
        either way; fine-tuning ignores it.
    semi_supervised : {"none", "fixmatch", "pseudo_label"} or None, default=None
        Train with :class:`skal.FixMatchClassifier` on the unlabelled rest of the pool too
        (None: the recipe's); not with ``"ssl-head"``.
    n_initial : int, default=100
        Random labelled pool samples before the first round (at least 2: the first model needs
        two classes).
    query_size : int, default=100
        Samples labelled per acquisition round.
    n_rounds : int, default=5
        Acquisition rounds; each repeat records ``n_rounds + 1`` results (round 0 is the initial
        labelled set) and ends with ``n_initial + n_rounds * query_size`` labels. A finished run
        can be extended by running it again with more rounds.
    repeats : int, default=2
        Independent repeats (different pool, initial set and seeds); can grow too.
    seed : int, default=0
        Master seed; every random draw derives from it.
    pool_size : int or None, default=None
        Stratified subsample of the train split used as pool (None: all of it); at least the
        number of classes.
    test_size : int or None, default=None
        Stratified subsample of the test split (None: all of it); at least the number of
        classes. For data sets without a test split (digits) this many train samples are held
        out (None: a quarter).
    width : int, default=16
        Channels of the first ResNet18 stage (64 is the standard ResNet18).
    preact : bool, default=False
        Use the pre-activation ResNet18.
    dropout : float, default=0.5
        Dropout before the classifier's last layer (of the head and critic for WAAL).
    max_epochs : int, default=30
        Training epochs per round.
    min_steps : int, default=0
        Train for at least this many gradient steps per round: the epochs are raised to
        ``ceil(min_steps / steps_per_epoch)`` (see :meth:`epochs_for`), where an epoch is
        ``ceil(n_labeled / batch_size)`` steps, or for WAAL ``ceil(n_unlabeled / batch_size)``
        (a WAAL epoch is a pass over the unlabelled pool). With ``warm_start`` the epochs of
        round 0 are used throughout.
    batch_size : int, default=64
        Mini-batch size.
    lr : float or None, default=None
        Learning rate; None is the method's own: 1e-3 (Adam) for the ResNet18 methods, 0.01
        (SGD, the paper's) for ``"waal"``.
    lr_schedule : {"constant", "cosine"}, default="constant"
        "cosine" anneals the learning rate to 0 over each round's epochs, which makes the
        final model (the one scored and queried) less dependent on the last few batches.
    n_mc_samples : int, default=20
        MC-dropout passes for BALD.
    subsample : int or None, default=None
        Score only a random subset of this many pool samples per BALD query.
    warm_start : bool, default=False
        Continue training the previous round's model instead of training from scratch.
    device : str, default="cpu"
        Not part of the run's identity: a run started on a GPU can be resumed on the CPU and
        back; every result row records the device it ran on.

    See Also
    --------
    skal.experiment.run_experiment : Runs the experiment a configuration defines.
    skal.experiment.Method : What a ``method`` name stands for.

    Examples
    --------
    >>> from skal.experiment import ExperimentConfig
    >>> config = ExperimentConfig(dataset="digits", method="random", n_initial=20,
    ...                           query_size=10, n_rounds=2)
    >>> config.n_labeled_final
    40
    >>> config.n_mc_samples is None  # random sampling takes no MC passes
    True
    """

    dataset: str = _option("fashion_mnist", "the path of an image folder (one sub-folder per "
                                            "class) or .npz file (X, y), or a data set by name",
                           kind="str")
    test: str | None = _option(None, "test set for a --dataset PATH: an image folder or .npz "
                                     "file", kind="str", shown="a quarter of the data held out")
    image_size: int | None = _option(None, "resize an image folder's images to N x N", low=1,
                                     shown="as they are")
    method: str | None = _option(None, "query method (see the list below)", kind="str",
                                 shown="the recipe's: bald for scratch")
    recipe: str = _option("scratch", "training recipe (see the list below)", kind="str")
    encoder_width: int | None = _option(None, "recipes with an encoder: channels of its first "
                                              "ResNet18 stage", low=1, shown="the recipe's: 8")
    encoder_epochs: int | None = _option(None, "recipes with an encoder: SimCLR epochs over "
                                               "the pool", low=1, shown="the recipe's: 15")
    encoder_batch_size: int | None = _option(None, "recipes with an encoder: SimCLR batch "
                                                   "size", low=2, shown="the recipe's: 256")
    encoder_stem_stride: int | None = _option(None, "recipes with an encoder: 2 halves the "
                                                    "resolution in its stem (twice the width at "
                                                    "about the same cost)", kind="choice",
                                              choices=(1, 2), shown="the recipe's: 1")
    encoder_feature_stages: str | None = _option(None, "recipes with an encoder: the head's "
                                                       "features, the pooled last ResNet stage "
                                                       "or all four side by side",
                                                 kind="choice", choices=("last", "all"),
                                                 shown="the recipe's: last")
    semi_supervised: str | None = _option(None, "train on the unlabelled pool too (FixMatch "
                                                "or pseudo-labels; not for ssl-head)",
                                          kind="choice", choices=_SEMI_SUPERVISED,
                                          shown="the recipe's: none")
    n_initial: int = _option(100, "random labelled samples before the first round", low=2)
    query_size: int = _option(100, "samples labelled per acquisition round", low=1)
    n_rounds: int = _option(5, "acquisition rounds (the run records rounds 0..ROUNDS); a "
                               "finished run grows when run again with more", flag="--rounds",
                            low=0)
    repeats: int = _option(2, "independent repeats (other pool, initial labels and seeds); "
                              "can grow too", low=1)
    seed: int = _option(0, "master seed: every random draw derives from it", low=0)
    pool_size: int | None = _option(None, "stratified subsample of the train split used as "
                                          "pool", low=1, shown="all")
    test_size: int | None = _option(None, "stratified subsample of the test split (digits: "
                                          "train samples held out)", low=1,
                                    shown="all; digits: a quarter")
    width: int = _option(16, "ResNet18 channels of the first stage (64: the standard "
                             "ResNet18)", low=1)
    preact: bool = _option(False, "pre-activation ResNet18", kind="bool")
    dropout: float = _option(0.5, "dropout before the last layer (WAAL: head and critic)",
                             kind="float")
    max_epochs: int = _option(30, "training epochs per round", flag="--epochs", low=1)
    min_steps: int = _option(0, "train at least this many gradient steps per round (more "
                                "epochs for small labelled sets; a WAAL epoch is a pass over "
                                "the unlabelled pool)", low=0)
    batch_size: int = _option(64, "mini-batch size", low=1)
    lr: float | None = _option(None, "learning rate", kind="float", low=0,
                               shown="the method's: 1e-3 (Adam), waal 0.01 (SGD)")
    lr_schedule: str = _option("constant", "learning rate within a round", kind="choice",
                               choices=_LR_SCHEDULES)
    n_mc_samples: int = _option(20, "MC-dropout passes for BALD", flag="--mc-samples", low=1)
    subsample: int | None = _option(None, "BALD scores a random subset of this many pool "
                                          "samples per query", low=1, shown="the whole pool")
    warm_start: bool = _option(False, "continue training between rounds instead of "
                                      "restarting", kind="bool")
    device: str = _option("cpu", "torch device: cpu, cuda, cuda:1, ... (a run may resume on "
                                 "another one)", kind="str")

    def __post_init__(self):
        from .. import datasets  # light: numpy only

        expected = (f"Expected one of: {', '.join(repr(d) for d in datasets.DATASETS)}, or the "
                    "path of an image folder or of a .npz file.")
        if self.dataset not in datasets.DATASETS and not is_data_path(self.dataset):
            _check_path("dataset", self.dataset, expected)
            raise ConfigError(f"Unknown dataset {self.dataset!r}. {expected}")
        if self.test is not None:
            _check_path("test", self.test, "Expected the path of an image folder or .npz file.")
        if self.test is not None and not (is_data_path(self.dataset) and is_data_path(self.test)):
            raise ConfigError(
                f"{option_subject('test')} must be the path of an image folder or .npz file, "
                f"with a dataset path too. Got {option_setting('test', repr(self.test))} with "
                f"{option_setting('dataset', repr(self.dataset))} instead."
            )
        recipe = _lookup_recipe(self)
        if self.method is None:
            object.__setattr__(self, "method", recipe.strategy)
        method = self._method()
        ignored = set(method.ignores)
        if recipe.uses_encoder or recipe.semi_supervised != "none":
            _check_recipe_method(self, method)
        if recipe.uses_encoder:
            ignored |= {"width", "preact"}  # the trunk is the encoder's, or there is none
        for f in option_fields():
            value = getattr(self, f.name)
            if f.name in ignored:
                object.__setattr__(self, f.name, None)  # stored as "not used"
                continue
            if f.name == "lr" and value is None:
                object.__setattr__(self, "lr", method.defaults.get("lr", DEFAULT_LR))
            _check_field(f, getattr(self, f.name))
        if not 0 <= self.dropout < 1:
            _fail("dropout", "a float in [0, 1)", self.dropout)
        for key in _ENCODER_FIELDS:  # what the run really uses
            object.__setattr__(self, key, getattr(recipe, key) if recipe.uses_encoder else None)
        object.__setattr__(self, "semi_supervised", recipe.semi_supervised)
        if self.pool_size is not None and self.n_labeled_final > self.pool_size:
            raise ConfigError(
                f"The pool is too small: {label_budget()} = {self.n_labeled_final} labels, but "
                f"{_is('pool_size', self.pool_size)}."
            )

    def _method(self):
        return _lookup_method(self.method)

    def recipe_spec(self) -> Any:
        """The :class:`skal.recipe.Recipe` the run trains with (its fields as configured).

        Returns
        -------
        recipe : skal.recipe.Recipe
            ``recipe`` with ``encoder_*`` and ``semi_supervised`` applied.
        """
        return _lookup_recipe(self)

    @property
    def n_labeled_final(self) -> int:
        """Labels at the end of each repeat."""
        return self.n_initial + self.n_rounds * self.query_size

    def epochs_for(self, n_labeled: int, n_unlabeled: int = 0) -> int:
        """Return the epochs of a round: ``max_epochs``, or more to reach ``min_steps``.

        Parameters
        ----------
        n_labeled : int
            Labels in the round.
        n_unlabeled : int, default=0
            The unlabelled rest of the pool (what a WAAL epoch runs over).

        Returns
        -------
        epochs : int
            ``max(max_epochs, ceil(min_steps / steps_per_epoch))``.
        """
        steps_per_epoch = self._method().steps_per_epoch(self, n_labeled, n_unlabeled)
        return max(self.max_epochs, -(-self.min_steps // max(steps_per_epoch, 1)))

    @property
    def estimator(self) -> str:
        """The estimator the method trains, in words (for titles and ``config.json``)."""
        recipe = self.recipe_spec()
        semi = {"none": "", "fixmatch": ", FixMatch on the pool",
                "pseudo_label": ", pseudo-labels on the pool"}[recipe.semi_supervised]
        stride = (f", stem stride {recipe.encoder_stem_stride}"
                  if recipe.encoder_stem_stride != 1 else "")
        encoder = (f"a SimCLR encoder (width {recipe.encoder_width}{stride}, "
                   f"{recipe.encoder_epochs} epochs on the pool)")
        if recipe.training == "head":
            stages = ("all four stages' pooled features" if recipe.encoder_feature_stages == "all"
                      else "the frozen features")
            return f"EmbeddingHeadClassifier on {stages} of {encoder}"
        if recipe.training == "finetune":
            return f"ResNet18Classifier(width={recipe.encoder_width}) started from {encoder}{semi}"
        return self._method().describe(self) + semi

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-serialisable dict.

        Returns
        -------
        params : dict
            Every field, plus the derived ``"estimator"`` (the estimator in words).
        """
        return {**dataclasses.asdict(self), "estimator": self.estimator}

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> "ExperimentConfig":
        """Build a configuration from :meth:`to_dict`'s output.

        Parameters
        ----------
        params : mapping
            Field names and values; a derived ``"estimator"`` key is ignored.

        Returns
        -------
        config : ExperimentConfig
            The configuration, checked.

        Raises
        ------
        skal.exceptions.ConfigError
            For an unknown key or an invalid value.
        """
        params = {k: v for k, v in params.items() if k != "estimator"}  # derived, not a field
        unknown = set(params) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"Unknown ExperimentConfig fields: {sorted(unknown)}.")
        return cls(**params)

    def identity(self) -> dict[str, Any]:
        """Return the fields that make two runs the same experiment.

        Returns
        -------
        identity : dict
            :meth:`to_dict` without ``device`` (a run may move between CPU and GPU),
            ``n_rounds`` and ``repeats`` (a run may grow) and the derived ``estimator``.
        """
        return {k: v for k, v in self.to_dict().items()
                if k not in ("device", "n_rounds", "repeats", "estimator")}

