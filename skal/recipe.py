"""The label-saving recipe: a named combination of representation, training and strategy.

A :class:`Recipe` says how the classifier of an active-learning loop is trained: from scratch
(today's ResNet18), as a small MC-dropout head on the frozen features of a SimCLR
:class:`skal.ContrastiveEncoder` fitted on the unlabelled pool, or as a ResNet18 whose trunk
starts from that encoder; optionally with FixMatch or pseudo-labelling on the pool; and which
query strategy it pairs with. :data:`RECIPES` holds the named ones, :func:`get_recipe` looks one
up (``"ssl-finetune+fixmatch"`` adds FixMatch to ``"ssl-finetune"``) and :func:`make_recipe`
builds what a loop needs from a pool: the encoder (fitted once, cached by the pool's content and
the settings), the estimator and the data view the strategy scores on.

:func:`make_estimator` is the one estimator factory of skal's loops: ``skal run`` (every method,
WAAL and BGADL included) and ``skal label`` build their classifiers through it.
"""

import dataclasses
import hashlib
import json
import math
import numbers
import os
import pickle
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .utils.atomic import write_atomic

__all__ = [
    "RECIPES",
    "EncodedFeatures",
    "PreparedRecipe",
    "Recipe",
    "fit_encoder",
    "get_recipe",
    "make_estimator",
    "make_recipe",
    "register_recipe",
]

_TRAININGS = ("scratch", "head", "finetune")
_SEMI = ("none", "fixmatch", "pseudo_label")


def _fail(name, expected, value):
    raise ValueError(f"The '{name}' parameter of Recipe must be {expected}. Got {value!r} "
                     "instead.")


def _is_int(value, low):
    return (not isinstance(value, bool) and isinstance(value, numbers.Integral)
            and value >= low)


@dataclass(frozen=True)
class Recipe:
    """How a loop's classifier is trained, and with which strategy it pairs best.

    A frozen dataclass: the representation (a SimCLR encoder fitted on the pool, or none), the
    classifier on it (a head on frozen features, or a ResNet18 from scratch or started from the
    encoder), the optional semi-supervised training on the pool, and the query method. The
    named ones are in :data:`RECIPES`; :func:`get_recipe` returns one with fields replaced.

    Parameters
    ----------
    name : str
        The recipe's name (in :data:`RECIPES`, ``skal run --recipe``, ``skal label init
        --recipe``).
    training : {"scratch", "head", "finetune"}
        ``"scratch"``: a ResNet18 trained from random weights (skal's training without a
        recipe); ``"head"``: an :class:`skal.EmbeddingHeadClassifier` on the frozen features of
        a SimCLR encoder fitted on the unlabelled pool; ``"finetune"``: a ResNet18 of the
        encoder's width whose trunk starts from the encoder (:func:`skal.init_trunk`).
    semi_supervised : {"none", "fixmatch", "pseudo_label"}, default="none"
        Train on the unlabelled pool too (:class:`skal.FixMatchClassifier`); for ``"scratch"``
        and ``"finetune"`` only (the head sees frozen features, which have no augmentations).
    strategy : str, default="random"
        The query method it pairs with (a :data:`skal.experiment.METHODS` name): what
        ``skal run --recipe`` runs when no ``--method`` is given.
    encoder_width : int, default=8
        Channels of the encoder's first ResNet18 stage.
    encoder_stem_stride : {1, 2}, default=1
        Stride of the encoder's stem (2: its stages run at half the resolution, so twice the
        width has about the same multiply-adds; ``"finetune"`` classifiers get the same).
    encoder_feature_stages : {"last", "all"}, default="last"
        The encoder's ``feature_stages``: the features a head learns on are the pooled last
        stage, or the pooled outputs of all four stages side by side (15 times the width).
    encoder_epochs : int, default=15
        SimCLR epochs over the pool.
    encoder_batch_size : int, default=256
        SimCLR batch size (at least 2).
    encoder_lr : float, default=2e-3
        Adam's learning rate for the encoder (cosine-annealed over its epochs).
    temperature : float, default=0.5
        NT-Xent temperature.
    flip : bool, default=True
        Mirror images in the augmentations (False where a mirror image is another class).
    crop_min : float in (0, 1], default=0.2
        Smallest area of the random resized crop.
    head_hidden : int, default=128
        Hidden width of the head (0: linear).
    threshold : float in (0, 1], default=0.95
        FixMatch's confidence threshold.
    unlabeled_weight : float, default=1.0
        FixMatch's weight of the unlabelled loss.
    description : str, default=""
        One line for listings.

    See Also
    --------
    get_recipe : A registered recipe, with fields overridden.
    make_recipe : What a loop needs from a pool.

    Examples
    --------
    >>> from skal import Recipe
    >>> recipe = Recipe("my-head", "head", strategy="margin", encoder_epochs=5)
    >>> recipe.uses_encoder, recipe.encoder_settings()["encoder_epochs"]
    (True, 5)
    """

    name: str
    training: str
    semi_supervised: str = "none"
    strategy: str = "random"
    encoder_width: int = 8
    encoder_stem_stride: int = 1
    encoder_feature_stages: str = "last"
    encoder_epochs: int = 15
    encoder_batch_size: int = 256
    encoder_lr: float = 2e-3
    temperature: float = 0.5
    flip: bool = True
    crop_min: float = 0.2
    head_hidden: int = 128
    threshold: float = 0.95
    unlabeled_weight: float = 1.0
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            _fail("name", "a non-empty str", self.name)
        if self.training not in _TRAININGS:
            _fail("training", f"one of {_TRAININGS}", self.training)
        if self.semi_supervised not in _SEMI:
            _fail("semi_supervised", f"one of {_SEMI}", self.semi_supervised)
        if self.training == "head" and self.semi_supervised != "none":
            raise ValueError(
                f"The 'semi_supervised' parameter of Recipe must be 'none' with "
                f"training='head' (FixMatch and pseudo-labelling train an image network on "
                f"augmented views; the head learns on frozen features). Got "
                f"{self.semi_supervised!r} instead; use training='finetune' or 'scratch'.")
        if not isinstance(self.strategy, str) or not self.strategy:
            _fail("strategy", "a non-empty str", self.strategy)
        for key, low in (("encoder_width", 1), ("encoder_epochs", 1),
                         ("encoder_batch_size", 2), ("head_hidden", 0)):
            if not _is_int(getattr(self, key), low):
                _fail(key, f"an int in the range [{low}, inf)", getattr(self, key))
        if not _is_int(self.encoder_stem_stride, 1) or self.encoder_stem_stride > 2:
            _fail("encoder_stem_stride", "1 or 2", self.encoder_stem_stride)
        if self.encoder_feature_stages not in ("last", "all"):
            _fail("encoder_feature_stages", "'last' or 'all'", self.encoder_feature_stages)
        for key in ("encoder_lr", "temperature"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    math.isfinite(value) and value > 0):
                _fail(key, "a float in the range (0.0, inf)", value)
        for key in ("crop_min", "threshold"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    0 < value <= 1):
                _fail(key, "a float in the range (0.0, 1.0]", value)
        weight = self.unlabeled_weight
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (
                math.isfinite(weight) and weight >= 0):
            _fail("unlabeled_weight", "a float in the range [0.0, inf)", weight)
        if not isinstance(self.flip, bool):
            _fail("flip", "a bool", self.flip)

    @property
    def uses_encoder(self) -> bool:
        """Whether the recipe fits a :class:`skal.ContrastiveEncoder` on the pool."""
        return self.training != "scratch"

    def encoder_settings(self) -> dict[str, Any]:
        """The settings that define the encoder (its cache key, with the pool and the seed).

        Returns
        -------
        settings : dict
            ``encoder_width``, ``encoder_epochs``, ``encoder_batch_size``, ``encoder_lr``,
            ``temperature``, ``flip`` and ``crop_min``; and ``encoder_stem_stride`` when it is
            not 1 and ``encoder_feature_stages`` when it is not ``"last"`` (so that the keys of
            encoders cached before they existed stay the same).
        """
        keys = ("encoder_width", "encoder_epochs", "encoder_batch_size", "encoder_lr",
                "temperature", "flip", "crop_min")
        settings = {k: getattr(self, k) for k in keys}
        if self.encoder_stem_stride != 1:
            settings["encoder_stem_stride"] = self.encoder_stem_stride
        if self.encoder_feature_stages != "last":
            settings["encoder_feature_stages"] = self.encoder_feature_stages
        return settings


def _recipes():
    scratch = Recipe("scratch", "scratch", strategy="bald",
                     description="ResNet18 from random weights (skal without a recipe)")
    head = Recipe("ssl-head", "head", strategy="badge",
                  description="SimCLR encoder fitted on the pool, frozen; an MC-dropout MLP "
                              "head on its features (seconds a round)")
    finetune = Recipe("ssl-finetune", "finetune", strategy="margin",
                      description="ResNet18 whose trunk starts from the SimCLR encoder")
    return {
        "scratch": scratch,
        "scratch+fixmatch": dataclasses.replace(
            scratch, name="scratch+fixmatch", semi_supervised="fixmatch", strategy="margin",
            description="ResNet18 from random weights, FixMatch on the pool"),
        "ssl-head": head,
        "ssl-finetune": finetune,
        "ssl-finetune+fixmatch": dataclasses.replace(
            finetune, name="ssl-finetune+fixmatch", semi_supervised="fixmatch",
            description="ResNet18 started from the SimCLR encoder, FixMatch on the pool"),
    }


#: The named recipes. ``NAME+fixmatch`` and ``NAME+pseudo_label`` also work for the ones that
#: train an image network (see :func:`get_recipe`).
RECIPES: dict[str, Recipe] = _recipes()


def register_recipe(recipe: Recipe, *, overwrite: bool = False) -> Recipe:
    """Make ``recipe`` available by its name (to :func:`get_recipe`, ``skal run --recipe``).

    Parameters
    ----------
    recipe : Recipe
        The recipe.
    overwrite : bool, default=False
        Replace a recipe of that name instead of raising.

    Returns
    -------
    recipe : Recipe
        The recipe given.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"The 'recipe' parameter of register_recipe must be a skal.recipe.Recipe."
                        f" Got {type(recipe).__name__} instead.")
    if recipe.name in RECIPES and not overwrite:
        raise ValueError(f"A recipe named {recipe.name!r} exists already; pass overwrite=True.")
    RECIPES[recipe.name] = recipe
    return recipe


def recipe_names() -> list[str]:
    """The registered recipe names, sorted."""
    return sorted(RECIPES)


def get_recipe(name: "str | Recipe", **overrides: Any) -> Recipe:
    """A registered recipe by name, with some of its fields replaced.

    Parameters
    ----------
    name : str or Recipe
        A name of :data:`RECIPES`; ``BASE+fixmatch`` / ``BASE+pseudo_label`` is ``BASE`` with
        that ``semi_supervised``. A :class:`Recipe` is returned with the overrides.
    **overrides
        :class:`Recipe` fields to replace (e.g. ``encoder_epochs=5``).

    Returns
    -------
    recipe : Recipe
        The recipe, with the overrides applied (checked).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones), an unknown field or an invalid
        value.

    Examples
    --------
    >>> from skal.recipe import get_recipe
    >>> get_recipe("ssl-finetune+fixmatch", encoder_epochs=5).semi_supervised
    'fixmatch'
    """
    if isinstance(name, Recipe):
        recipe = name
    elif isinstance(name, str) and name in RECIPES:
        recipe = RECIPES[name]
    else:
        base, plus, semi = name.partition("+") if isinstance(name, str) else (None, "", "")
        if not (plus and base in RECIPES and semi in _SEMI[1:]):
            known = ", ".join(repr(n) for n in recipe_names())
            raise ValueError(f"Unknown recipe {name!r}. Expected one of: {known} (or "
                             "NAME+fixmatch, NAME+pseudo_label).")
        recipe = dataclasses.replace(RECIPES[base], name=name, semi_supervised=semi)
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"Unknown Recipe fields {unknown}; expected some of {sorted(fields)}.")
    return dataclasses.replace(recipe, **overrides) if overrides else recipe


# ---------------------------------------------------------------------------- the encoder
_ENCODERS: dict[tuple, Any] = {}  # in-process cache: (key, file) -> fitted encoder (latest few)
_MAX_ENCODERS = 4


def _pool_digest(X):
    X = np.ascontiguousarray(np.asarray(X))
    h = hashlib.sha256(f"{X.dtype.str}{X.shape}".encode())
    h.update(memoryview(X.reshape(-1).view(np.uint8)))
    return h.hexdigest()


def encoder_key(recipe: Recipe, X_pool: Any = None, random_state: int = 0) -> str:
    """The cache key of a recipe's encoder: its settings, the seed and (given) the pool's bytes."""
    settings = json.dumps({**recipe.encoder_settings(), "random_state": int(random_state)},
                          sort_keys=True)
    h = hashlib.sha256(settings.encode())
    if X_pool is not None:
        h.update(_pool_digest(X_pool).encode())
    return h.hexdigest()[:20]


def _new_encoder(recipe, random_state, device):
    from skorch.callbacks import LRScheduler
    from torch.optim.lr_scheduler import CosineAnnealingLR

    from .estimators import ContrastiveEncoder

    return ContrastiveEncoder(
        width=recipe.encoder_width, stem_stride=recipe.encoder_stem_stride,
        feature_stages=recipe.encoder_feature_stages, max_epochs=recipe.encoder_epochs,
        batch_size=recipe.encoder_batch_size, lr=recipe.encoder_lr,
        temperature=recipe.temperature, flip=recipe.flip, crop_scale=(recipe.crop_min, 1.0),
        random_state=random_state, device=device,
        callbacks=[("cosine", LRScheduler(CosineAnnealingLR, T_max=recipe.encoder_epochs))],
    )


def _load_cached_encoder(path):
    """The encoder cached at ``path`` and the SHA-256 of the file, or ``(None, None)`` when there
    is none or it no longer unpickles (a cache written by another version of skal names module
    paths that may have moved: it is then fitted again and the cache replaced)."""
    if not os.path.isfile(path):
        return None, None
    with open(path, "rb") as f:
        data = f.read()
    try:
        return pickle.loads(data), hashlib.sha256(data).hexdigest()
    except (ImportError, AttributeError, EOFError, pickle.UnpicklingError) as exc:
        warnings.warn(f"The cached encoder {path} cannot be loaded ({type(exc).__name__}: {exc}); "
                      "fitting it again.", UserWarning, stacklevel=3)
        return None, None


def fit_encoder(recipe: "str | Recipe", X_pool: Any, *, random_state: int = 0,
                cache_dir: "str | os.PathLike[str] | None" = None, key: str | None = None,
                device: str = "cpu") -> Any:
    """The recipe's SimCLR encoder fitted on ``X_pool``, from the cache when it is there.

    The encoder is looked up by ``key`` (default: :func:`encoder_key` of the settings, the seed
    and the pool's bytes) and ``cache_dir`` in this process, then in ``cache_dir/encoder-KEY.pkl``;
    otherwise it is fitted (no labels) and saved there atomically. Only load cache folders you
    trust: a pickle can run code.

    Parameters
    ----------
    recipe : str or Recipe
        A recipe that uses an encoder.
    X_pool : array-like of images
        The unlabelled pool.
    random_state : int, default=0
        Seed of the encoder.
    cache_dir : str, path-like or None, default=None
        Folder of the file cache (None: this process only).
    key : str or None, default=None
        Cache key; give one to reuse an encoder on a pool that grows (a labelling project).
    device : str, default="cpu"
        Torch device of the fit (the cached encoder is moved to the CPU's pickle as it is).

    Returns
    -------
    encoder : ContrastiveEncoder
        Fitted; ``fit_info_`` holds ``{"cpu_s", "wall_s", "threads", "cached", "sha256"}``,
        ``sha256`` being the SHA-256 of the cache file it was loaded from or saved to (None
        without ``cache_dir``): what identifies the encoder in caches of its features.
    """
    import torch

    recipe = get_recipe(recipe)
    if not recipe.uses_encoder:
        raise ValueError(f"Recipe {recipe.name!r} trains no encoder (training='scratch').")
    key = key or encoder_key(recipe, X_pool, random_state)
    path = None if cache_dir is None else os.path.abspath(
        os.path.join(os.fspath(cache_dir), f"encoder-{key}.pkl"))
    if (key, path) in _ENCODERS:  # the folder too: two projects' encoders are two encoders
        return _ENCODERS[key, path]
    encoder, digest = _load_cached_encoder(path) if path is not None else (None, None)
    if encoder is not None:
        encoder.fit_info_ = dict(getattr(encoder, "fit_info_", {}), cached=True, sha256=digest)
    else:
        encoder = _new_encoder(recipe, random_state, device)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        encoder.fit(X_pool)
        encoder.fit_info_ = {"cpu_s": round(time.process_time() - cpu0, 1),
                             "wall_s": round(time.perf_counter() - wall0, 1),
                             "threads": torch.get_num_threads(), "cached": False}
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            data = pickle.dumps(encoder)
            write_atomic(path, data)  # a killed fit leaves no half file
            digest = hashlib.sha256(data).hexdigest()
        encoder.fit_info_["sha256"] = digest
    while len(_ENCODERS) >= _MAX_ENCODERS:
        _ENCODERS.pop(next(iter(_ENCODERS)))
    _ENCODERS[key, path] = encoder
    return encoder


class EncodedFeatures(TransformerMixin, BaseEstimator):
    """A fitted encoder as a frozen ``Pipeline`` step that remembers the rows it embedded.

    ``transform(X)`` returns the encoder's features of the images ``X``; a row (image) it has
    seen is not embedded again, so an active-learning loop that re-scores the same pool every
    round pays the encoder once. ``fit`` does nothing (the encoder stays as fitted) and
    ``clone`` returns the same object, as for scikit-learn's ``FrozenEstimator``; a pickle drops
    the remembered rows.

    Parameters
    ----------
    encoder : ContrastiveEncoder or None
        A fitted encoder (None only to check the parameters of a pipeline before it exists).
    max_rows : int, default=200000
        Rows remembered at most (then forgotten all at once).

    See Also
    --------
    sklearn.frozen.FrozenEstimator : The same without the memory.
    make_recipe : Builds the ``Pipeline`` of this step and a head.

    Examples
    --------
    >>> from skal import ContrastiveEncoder
    >>> from skal.datasets import load_digits_images
    >>> from skal.recipe import EncodedFeatures
    >>> X, _ = load_digits_images()
    >>> enc = ContrastiveEncoder(width=2, max_epochs=1, batch_size=64, flip=False,
    ...                          random_state=0).fit(X[:128])
    >>> EncodedFeatures(enc).transform(X[:3]).shape
    (3, 16)
    """

    def __init__(self, encoder: Any = None, max_rows: int = 200_000) -> None:
        self.encoder = encoder
        self.max_rows = max_rows

    @property
    def _rows(self) -> dict:
        return self.__dict__.setdefault("_remembered", {})

    def set_params(self, **params: Any) -> "EncodedFeatures":
        """Set ``encoder`` or ``max_rows`` (forgets the remembered rows).

        Parameters
        ----------
        **params
            ``encoder`` and / or ``max_rows``.

        Returns
        -------
        self : EncodedFeatures
            This step.
        """
        super().set_params(**params)
        self.__dict__.pop("_remembered", None)
        return self

    def __sklearn_clone__(self):
        return self

    def __sklearn_is_fitted__(self):
        return True

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_remembered", None)
        return state

    def _encoder(self):
        from .estimators import ContrastiveEncoder

        if not isinstance(self.encoder, ContrastiveEncoder):
            raise ValueError(
                "The 'encoder' parameter of EncodedFeatures must be a fitted "
                f"skal.ContrastiveEncoder. Got {type(self.encoder).__name__} instead "
                "(build the estimator with skal.make_recipe, which fits it).")
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self.encoder)
        return self.encoder

    def fit(self, X: Any = None, y: Any = None, **fit_params: Any) -> "EncodedFeatures":
        """Check that the encoder is fitted; nothing is learnt (the features are frozen).

        Parameters
        ----------
        X, y : ignored
            Accepted for the ``Pipeline`` API.
        **fit_params
            Ignored.

        Returns
        -------
        self : EncodedFeatures
            This step.

        Raises
        ------
        ValueError
            If ``encoder`` is not a :class:`skal.ContrastiveEncoder`.
        """
        self._encoder()
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The features ``(n, d)`` of the images ``X`` (rows seen before come from memory).

        Parameters
        ----------
        X : array-like of images
            Images as the encoder takes them; a torch ``Dataset`` or a list of PIL images is
            embedded without being remembered.

        Returns
        -------
        Z : ndarray of shape (n, d)
            The encoder's features (float32).
        """
        encoder = self._encoder()
        if not isinstance(X, np.ndarray):
            return encoder.transform(X)  # a Dataset, a list of PIL images: not remembered
        X = np.ascontiguousarray(X)
        keys = [row.tobytes() for row in X.reshape(len(X), -1)] if len(X) else []
        missing = [i for i, k in enumerate(keys) if k not in self._rows]
        if missing:
            Z_new = encoder.transform(X[missing])
            if len(self._rows) + len(missing) > self.max_rows:
                self._rows.clear()
            for i, z in zip(missing, Z_new):
                self._rows[keys[i]] = z
            if len(missing) == len(X):
                return Z_new
        return np.stack([self._rows[k] for k in keys]) if keys else encoder.transform(X)

    def remember(self, X: np.ndarray, Z: np.ndarray) -> "EncodedFeatures":
        """Remember ``Z`` as the features of the images ``X`` (e.g. read back from a file).

        The caller vouches that ``Z`` is what the encoder makes of ``X``: a cache of features
        must be keyed by the encoder it came from (see ``fit_info_["sha256"]`` of
        :func:`fit_encoder`).

        Parameters
        ----------
        X : ndarray of images
            The images, as :meth:`transform` takes them.
        Z : ndarray of shape (len(X), d)
            Their features; ``d`` is the encoder's ``embedding_dim_``.

        Returns
        -------
        self : EncodedFeatures
            This step.

        Raises
        ------
        ValueError
            If ``Z`` does not have one row of ``d`` features per image.
        """
        d = self._encoder().embedding_dim_
        X, Z = np.ascontiguousarray(X), np.asarray(Z, dtype=np.float32)
        if Z.shape != (len(X), d):
            raise ValueError(f"The 'Z' parameter of EncodedFeatures.remember must have shape "
                             f"({len(X)}, {d}) (one row of the encoder's {d} features per "
                             f"image). Got shape {Z.shape} instead.")
        if len(self._rows) + len(X) > self.max_rows:
            self._rows.clear()
        for row, z in zip(X.reshape(len(X), -1), Z):  # (n, ...) -> (n, C*H*W): a key per row
            self._rows[row.tobytes()] = z
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """:meth:`transform` (nothing is fitted).

        Parameters
        ----------
        X : array-like of images
            The images.
        y : ignored
            Accepted for the ``Pipeline`` API.
        **fit_params
            Ignored.

        Returns
        -------
        Z : ndarray of shape (n, d)
            The encoder's features.
        """
        return self.fit(X).transform(X)


# ---------------------------------------------------------------------------- the factory
#: The models :func:`make_estimator` builds: a recipe's ResNet18 (or head), WAAL's classifier
#: and BGADL's jointly trained ResNet18.
MODELS = ("resnet18", "waal", "bgadl")


def make_estimator(recipe: "str | Recipe" = "scratch", *, model: str = "resnet18",
                   classes: Any = None, random_state: Any = None, encoder: Any = None,
                   width: int | None = None, preact: bool = False, dropout: float = 0.5,
                   lr: float = 1e-3, max_epochs: int = 30, batch_size: int = 64,
                   device: str = "cpu", warm_start: bool = False, callbacks: Any = None,
                   **model_params: Any) -> Any:
    """The unfitted classifier of a loop: the one factory of ``skal run`` and ``skal label``.

    Every method of ``skal run`` (through :mod:`skal.experiment.methods`) and every model of
    ``skal label`` is built here: the classifier a recipe trains, :class:`skal.WAALClassifier`
    and :class:`skal.BGADLClassifier`.

    Parameters
    ----------
    recipe : str or Recipe, default="scratch"
        See :func:`get_recipe`; ``model="waal"`` and ``"bgadl"`` train their own network, so
        they take ``"scratch"`` only.
    model : {"resnet18", "waal", "bgadl"}, default="resnet18"
        ``"resnet18"``: what the recipe trains (below); ``"waal"``: a
        :class:`skal.WAALClassifier` (its feature extractor follows the images; ``width`` and
        ``preact`` do not apply); ``"bgadl"``: a :class:`skal.BGADLClassifier`, the recipe's
        ResNet18 trained jointly with a VAE-ACGAN.
    classes : array-like or None, default=None
        All classes, so the output layer does not depend on the labels seen so far.
    random_state : int, RandomState, Generator or None, default=None
        Seed of the classifier.
    encoder : ContrastiveEncoder, EncodedFeatures or None, default=None
        The fitted encoder of a recipe that uses one (None builds the estimator only to check
        its parameters: fitting it then fails with a clear message).
    width : int or None, default=None
        ResNet18 width; None: 16 from scratch, the encoder's for ``"finetune"``.
    preact : bool, default=False
        Pre-activation ResNet18 (``"finetune"``: the encoder's; ``"head"``: unused).
    dropout : float, default=0.5
        Dropout before the last layer (the MC-dropout layer).
    lr : float, default=1e-3
        Learning rate (Adam).
    max_epochs : int, default=30
        Epochs per fit.
    batch_size : int, default=64
        Training batch size.
    device : str, default="cpu"
        Torch device.
    warm_start : bool, default=False
        Continue training between fits.
    callbacks : list or None, default=None
        The skorch callbacks of the classifier (the head for ``"head"``).
    **model_params
        Parameters of the WAAL or BGADL classifier (e.g. ``query_size=`` for WAAL,
        ``gen_weight=`` for BGADL); none for ``"resnet18"``.

    Returns
    -------
    estimator
        ``"scratch"`` / ``"finetune"``: a :class:`skal.ResNet18Classifier` (a
        :class:`skal.FixMatchClassifier` with ``semi_supervised``; its ``fit`` takes
        ``X_unlabeled``); ``"head"``: a ``Pipeline`` of :class:`EncodedFeatures` and an
        :class:`skal.EmbeddingHeadClassifier`, taking images. ``model="waal"``: a
        :class:`skal.WAALClassifier` (its ``fit`` takes ``X_unlabeled``); ``"bgadl"``: a
        :class:`skal.BGADLClassifier` (its ``fit`` takes ``new_rows``).

    Raises
    ------
    ValueError
        For an unknown ``model``, a recipe other than ``"scratch"`` with WAAL or BGADL, or
        ``model_params`` with ``"resnet18"``.

    Examples
    --------
    >>> from skal.recipe import make_estimator
    >>> make_estimator(model="waal", query_size=10, max_epochs=2).max_epochs
    2
    """
    recipe = get_recipe(recipe)
    if model not in MODELS:
        raise ValueError(f"The 'model' parameter of make_estimator must be one of {MODELS}. Got "
                         f"{model!r} instead.")
    features = encoder if isinstance(encoder, EncodedFeatures) else None
    encoder = features.encoder if features is not None else encoder
    common = dict(lr=lr, max_epochs=max_epochs, batch_size=batch_size,
                  random_state=random_state, device=device, warm_start=bool(warm_start),
                  classes=classes, callbacks=callbacks)
    if model != "resnet18":
        return _own_network(model, recipe, dropout, width, preact, common, model_params)
    if model_params:
        raise ValueError(f"make_estimator(model='resnet18') takes no parameters "
                         f"{sorted(model_params)} (they are WAAL's or BGADL's).")
    if recipe.training == "head":
        from sklearn.pipeline import Pipeline

        from .estimators import EmbeddingHeadClassifier

        head = EmbeddingHeadClassifier(hidden=recipe.head_hidden, dropout=dropout, **common)
        return Pipeline([("features", features or EncodedFeatures(encoder)), ("head", head)])
    stem_stride = 1
    if recipe.training == "finetune" and encoder is not None:
        trunk = encoder.trunk_
        width = trunk.conv1.out_channels if width is None else width
        preact = type(trunk).__name__ == "PreActResNet18"
        stem_stride = trunk.conv1.stride[0]
    elif recipe.training == "finetune":
        width = recipe.encoder_width if width is None else width
        stem_stride = recipe.encoder_stem_stride
    params = dict(preact=preact, dropout=dropout, width=16 if width is None else width,
                  stem_stride=stem_stride, **common)
    if recipe.semi_supervised != "none":
        from .estimators import FixMatchClassifier

        estimator = FixMatchClassifier(
            **params, consistency=recipe.semi_supervised, threshold=recipe.threshold,
            unlabeled_weight=recipe.unlabeled_weight, flip=recipe.flip)
    else:
        from .estimators import ResNet18Classifier

        estimator = ResNet18Classifier(**params)
    if recipe.training == "finetune" and encoder is not None:
        from .estimators import init_trunk

        init_trunk(estimator, encoder)
    return estimator


def _own_network(model, recipe, dropout, width, preact, common, model_params):
    """WAAL's or BGADL's classifier (they train their own network: no encoder, no FixMatch)."""
    if recipe.uses_encoder or recipe.semi_supervised != "none":
        raise ValueError(f"The 'recipe' parameter of make_estimator must be 'scratch' with "
                         f"model={model!r} (it trains its own network). Got {recipe.name!r} "
                         "instead.")
    if model == "waal":
        from .estimators import WAALClassifier

        return WAALClassifier(dropout=dropout, **common, **model_params)
    from .estimators import BGADLClassifier

    return BGADLClassifier(preact=preact, dropout=dropout, width=16 if width is None else width,
                           **common, **model_params)


@dataclass(frozen=True)
class PreparedRecipe:
    """What :func:`make_recipe` returns: the recipe, its fitted encoder and its estimator.

    A loop trains ``estimator`` on images; a strategy that works on the data view scores
    ``transform(X_pool)``.

    Parameters
    ----------
    recipe : Recipe
        The recipe, overrides applied.
    encoder : ContrastiveEncoder or None
        Fitted on the pool (None for ``"scratch"``).
    features : EncodedFeatures or None
        The encoder as a frozen, remembering ``Pipeline`` step (``"head"`` only).
    estimator : estimator
        Unfitted; takes images (see :func:`make_estimator`).

    See Also
    --------
    make_recipe : Builds it.

    Examples
    --------
    >>> from skal.recipe import PreparedRecipe, get_recipe, make_estimator
    >>> prepared = PreparedRecipe(get_recipe("scratch"), None, None, make_estimator("scratch"))
    >>> prepared.needs_unlabeled
    False
    """

    recipe: Recipe
    encoder: Any
    features: Any
    estimator: Any

    def transform(self, X: Any) -> Any:
        """The data view the strategy scores on: the features for ``"head"``, else ``X``.

        Parameters
        ----------
        X : array-like of images
            Images.

        Returns
        -------
        view : ndarray or array-like
            The features ``(n, d)`` for ``"head"``, ``X`` itself otherwise.
        """
        return X if self.features is None else self.features.transform(X)

    @property
    def needs_unlabeled(self) -> bool:
        """Whether ``estimator.fit`` wants the unlabelled pool (``X_unlabeled=``)."""
        return self.recipe.semi_supervised != "none"


def make_recipe(recipe: "str | Recipe", X_pool: Any, *, random_state: int = 0,
                cache_dir: "str | os.PathLike[str] | None" = None,
                recipe_params: Mapping[str, Any] | None = None,
                **estimator_params: Any) -> PreparedRecipe:
    """Build what an active-learning loop needs from a pool: encoder, estimator, data view.

    Parameters
    ----------
    recipe : str or Recipe
        ``"scratch"``, ``"ssl-head"``, ``"ssl-finetune"``, ``"ssl-finetune+fixmatch"``, ...
        (:data:`RECIPES`).
    X_pool : array-like of images ``(n, C, H, W)``
        The unlabelled pool the encoder is fitted on (once: cached by content and settings).
    random_state : int, default=0
        Seed of the encoder and of the estimator.
    cache_dir : str, path-like or None, default=None
        Folder of the encoder's file cache (see :func:`fit_encoder`).
    recipe_params : mapping or None, default=None
        :class:`Recipe` fields to override (e.g. ``{"encoder_epochs": 5}``).
    **estimator_params
        Parameters of :func:`make_estimator` (``classes``, ``max_epochs``, ``lr``, ...).

    Returns
    -------
    prepared : PreparedRecipe
        ``.estimator`` (unfitted, takes images; clonable and picklable), ``.encoder``,
        ``.transform(X)`` (the view strategies score on) and ``.needs_unlabeled``.

    Examples
    --------
    >>> from skal import make_recipe
    >>> from skal.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> prepared = make_recipe("ssl-head", X[:200], recipe_params=dict(
    ...     encoder_width=2, encoder_epochs=1, encoder_batch_size=64, flip=False), max_epochs=5)
    >>> prepared.estimator.fit(X[:50], y[:50]).predict(X[:3]).shape
    (3,)
    """
    recipe = get_recipe(recipe, **dict(recipe_params or {}))
    encoder = features = None
    if recipe.uses_encoder:
        encoder = fit_encoder(recipe, X_pool, random_state=random_state, cache_dir=cache_dir,
                              device=estimator_params.get("device", "cpu"))
    if recipe.training == "head":
        features = EncodedFeatures(encoder)
        if isinstance(X_pool, np.ndarray):
            features.transform(X_pool)  # the pool embedded once, in one fixed order
    estimator_params.setdefault("random_state", random_state)
    estimator = make_estimator(recipe, encoder=features or encoder, **estimator_params)
    return PreparedRecipe(recipe, encoder, features, estimator)
