"""The settings of a labelling project: defaults, their checks, and the names a project accepts.

A project's settings are one dict stored in its database (:meth:`LabelStore.config`); every
setting of :data:`DEFAULT_CONFIG` can be given to :meth:`Project.init` and changed with
:meth:`Project.configure`.
"""

import inspect

import numpy as np

__all__ = ["COST_AWARE_STRATEGIES", "DEFAULT_CONFIG", "available_strategies", "check_config",
           "check_name", "cost_settings", "model_for", "project_recipe", "round_params",
           "team_settings"]

#: Settings of a new project; every one can be given to :meth:`Project.init`.
DEFAULT_CONFIG = {
    "batch_size": 20,         # images per query batch
    "strategy": "bald",       # a query strategy of skal.query, by name
    "model": "auto",          # "resnet18", "waal", or "auto" (WAAL for waal_* strategies)
    "recipe": "scratch",      # a skal.recipe name: "ssl-head" trains a head on SimCLR features
    "encoder_epochs": None,   # recipes with an encoder: SimCLR epochs (None: the recipe's)
    "encoder_width": None,    # ... and its width (None: the recipe's)
    "encoder_stem_stride": None,     # ... 1 or 2: 2 halves the resolution in its stem
    "encoder_feature_stages": None,  # ... the head's features: "last" stage or "all" four
    "width": 16,              # ResNet18 channels of the first stage
    "epochs": 10,             # training epochs per round (at least)
    "min_steps": 100,         # ... and at least this many gradient steps (more epochs when few)
    "train_batch_size": 32,
    "lr": 1e-3,
    "mc_samples": 20,         # MC-dropout passes for BALD
    "subsample": None,        # BALD scores a random subset of this many pool images
    "holdout": 0.2,           # fraction of the labels kept out of training for the curve
    "seed": 0,
    "device": "cpu",
    "overlap": 1,             # each batch item goes to this many annotators
    "aggregation": "majority",  # the labels a round trains on: "majority" or "dawid_skene"
    "assign_size": 10,        # unanswered batch items an annotator holds at once
    "assign_timeout": 900.0,  # seconds after which an absent annotator's items go to others
    "cost_aware": False,      # rank by information per expected second of annotation
    "cost_power": 0.5,        # ... score / seconds ** cost_power (1: per second; 0: cost-blind)
    "time_model": "class",    # ... seconds from the mean time per class, or "regressor"
}

#: The strategies a cost-aware round can wrap (one utility per image), with the offset that
#: makes their scores >= 0 (:class:`skal.CostAwareStrategy`).
COST_AWARE_STRATEGIES = {"uncertainty_sampling": 0.0, "margin_sampling": 1.0,
                         "entropy_sampling": 0.0, "bald": 0.0}

#: What :meth:`Project.init` adds from the images themselves.
_DERIVED = {"image_size", "channels", "image_root"}

_MAX_NAME = 100


def available_strategies():
    """List the query strategies of :mod:`skal.query` by name.

    They follow modAL's convention, ``strategy(learner, X_pool, n_instances, ...)``.

    Returns
    -------
    list of str
        The names, sorted.
    """
    from .. import query

    names = []
    for name in getattr(query, "__all__", dir(query)):
        func = getattr(query, name, None)
        if not callable(func):
            continue
        try:
            params = list(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            continue
        if params[:2] == ["learner", "X_pool"] and "n_instances" in params:
            names.append(name)
    return sorted(names)


def _check_strategy(name):
    names = available_strategies()
    if name not in names:
        raise ValueError(
            f"The 'strategy' parameter must be one of {names}. Got {name!r} instead."
        )
    return name


def model_for(config):
    """Tell which model a round trains, from the ``model`` and ``strategy`` settings.

    Parameters
    ----------
    config : dict
        A project's settings.

    Returns
    -------
    str
        ``"resnet18"`` or ``"waal"``.

    Raises
    ------
    ValueError
        For an unknown ``model`` setting.
    """
    model = config["model"]
    if model not in ("auto", "resnet18", "waal"):
        raise ValueError(
            f"The 'model' parameter must be 'auto', 'resnet18' or 'waal'. Got {model!r} instead."
        )
    if model == "auto":
        model = "waal" if config["strategy"].startswith("waal") else "resnet18"
    if config["strategy"].startswith("waal") and model != "waal":
        raise ValueError(
            f"The strategy {config['strategy']!r} needs model='waal' (or 'auto'); got "
            f"model={config['model']!r}."
        )
    return model


#: a project's encoder settings: None for an int >= 1, else the values allowed
_ENCODER_SETTINGS = {"encoder_epochs": None, "encoder_width": None,
                     "encoder_stem_stride": (1, 2), "encoder_feature_stages": ("last", "all")}


def project_recipe(config):
    """Return the :class:`skal.recipe.Recipe` of a project's settings.

    Parameters
    ----------
    config : dict
        A project's settings.

    Returns
    -------
    skal.recipe.Recipe
        ``"scratch"``'s for a project made before recipes existed.

    Raises
    ------
    ValueError
        Naming the setting, for an unknown or incompatible recipe.
    """
    from ..recipe import get_recipe, recipe_names

    name = config.get("recipe", "scratch")
    try:
        recipe = get_recipe(name)
    except (ValueError, AttributeError):
        raise ValueError(
            f"The 'recipe' parameter must be one of {recipe_names()} (or NAME+fixmatch, "
            f"NAME+pseudo_label). Got {name!r} instead.") from None
    overrides = {}
    for key, expected in _ENCODER_SETTINGS.items():
        value = config.get(key)
        if value is None:
            continue
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        valid = (integer and value >= 1) if expected is None else (
            value in expected and integer == isinstance(expected[0], int))
        if not valid:
            wanted = "an int >= 1" if expected is None else f"one of {expected}"
            raise ValueError(f"The '{key}' parameter must be None or {wanted}. Got {value!r} "
                             "instead.")
        if not recipe.uses_encoder:
            raise ValueError(f"The '{key}' parameter applies to recipes with an encoder; the "
                             f"recipe {name!r} trains none. Got {key}={value!r}.")
        overrides[key] = int(value) if integer else value
    return get_recipe(recipe, **overrides) if overrides else recipe


def check_name(name, what):
    """Validate a class or annotator name: 1-100 printable characters, no path separators.

    Parameters
    ----------
    name : str
        The name.
    what : str
        What it names (``"class"``, ``"annotator"``), for the message.

    Returns
    -------
    str
        The name, unchanged.

    Raises
    ------
    ValueError
        If the name is not valid.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(
            f"A {what} name must be a non-empty string without leading or trailing spaces. Got "
            f"{name!r} instead."
        )
    if len(name) > _MAX_NAME or not name.isprintable() or name in (".", "..") or any(
        ch in name for ch in "/\\"
    ):
        raise ValueError(
            f"A {what} name must be at most {_MAX_NAME} printable characters, not '.' or '..', "
            f"without '/' or '\\'. Got {name!r} instead."
        )
    return name


def check_config(config):
    """Check a project's settings.

    Parameters
    ----------
    config : dict
        The settings to check.

    Raises
    ------
    ValueError
        Naming the first unknown or invalid setting.
    """
    unknown = set(config) - set(DEFAULT_CONFIG) - _DERIVED
    if unknown:
        raise ValueError(
            f"Unknown project settings {sorted(unknown)}; expected some of "
            f"{sorted(DEFAULT_CONFIG)}."
        )
    _check_strategy(config["strategy"])
    model = model_for(config)
    recipe = project_recipe(config)
    if model == "waal" and recipe.name != "scratch":
        raise ValueError(
            f"The 'recipe' parameter must be 'scratch' with model='waal' (WAAL trains its own "
            f"network; strategy {config['strategy']!r}). Got {recipe.name!r} instead.")
    for key in ("batch_size", "width", "epochs", "train_batch_size", "mc_samples"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"The '{key}' parameter must be an int >= 1. Got {value!r} instead.")
    steps = config["min_steps"]
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"The 'min_steps' parameter must be an int >= 0. Got {steps!r} instead.")
    if config["subsample"] is not None and (
        isinstance(config["subsample"], bool) or int(config["subsample"]) < 1
    ):
        raise ValueError(
            f"The 'subsample' parameter must be None or an int >= 1. Got "
            f"{config['subsample']!r} instead."
        )
    _check_team(config)
    _check_cost(config)
    if not 0 <= float(config["holdout"]) < 1:
        raise ValueError(
            f"The 'holdout' parameter must be a fraction in [0, 1). Got {config['holdout']!r} "
            "instead."
        )
    if not float(config["lr"]) > 0:
        raise ValueError(f"The 'lr' parameter must be > 0. Got {config['lr']!r} instead.")


def _check_team(config):
    """The settings of several annotators (absent from projects made before them)."""
    for key in ("overlap", "assign_size"):
        value = config.get(key, DEFAULT_CONFIG[key])
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"The '{key}' parameter must be an int in the range [1, inf). Got "
                             f"{value!r} instead.")
    aggregation = config.get("aggregation", DEFAULT_CONFIG["aggregation"])
    if aggregation not in ("majority", "dawid_skene"):
        raise ValueError(f"The 'aggregation' parameter must be 'majority' or 'dawid_skene'. Got "
                         f"{aggregation!r} instead.")
    timeout = config.get("assign_timeout", DEFAULT_CONFIG["assign_timeout"])
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer,
                                                             np.floating)) or not timeout > 0:
        raise ValueError(f"The 'assign_timeout' parameter must be a float in the range "
                         f"(0.0, inf) (seconds). Got {timeout!r} instead.")


def cost_settings(config):
    """Return the cost-aware settings of a project (the defaults for a project made before them).

    Parameters
    ----------
    config : dict
        A project's settings.

    Returns
    -------
    tuple
        ``(cost_aware, cost_power, time_model)``.
    """
    return tuple(config.get(k, DEFAULT_CONFIG[k]) for k in ("cost_aware", "cost_power",
                                                             "time_model"))


def _check_cost(config):
    """The cost-aware settings (absent from projects made before them)."""
    cost_aware, power, time_model = cost_settings(config)
    if not isinstance(cost_aware, (bool, np.bool_)):
        raise ValueError(f"The 'cost_aware' parameter must be True or False. Got {cost_aware!r} "
                         "instead.")
    if isinstance(power, bool) or not isinstance(power, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(power) and power >= 0):
        raise ValueError(f"The 'cost_power' parameter must be a float in the range [0.0, inf). "
                         f"Got {power!r} instead.")
    if time_model not in ("class", "regressor"):
        raise ValueError(f"The 'time_model' parameter must be 'class' or 'regressor'. Got "
                         f"{time_model!r} instead.")
    if not cost_aware:
        return
    if config["strategy"] not in COST_AWARE_STRATEGIES:
        raise ValueError(
            f"A cost-aware round (cost_aware=True) ranks by score per expected second, which "
            f"needs a strategy with one score per image: one of {sorted(COST_AWARE_STRATEGIES)}. "
            f"Got strategy={config['strategy']!r}; choose one of those or turn cost_aware off.")
    if config.get("subsample") is not None:
        raise ValueError(
            f"A cost-aware round scores every pool image; the 'subsample' parameter must be None "
            f"with cost_aware=True. Got subsample={config['subsample']!r}.")


def team_settings(config):
    """Return the team settings of a project (the defaults for a project made before them).

    Parameters
    ----------
    config : dict
        A project's settings.

    Returns
    -------
    tuple
        ``(overlap, aggregation, assign_size, assign_timeout)``.
    """
    return tuple(config.get(k, DEFAULT_CONFIG[k])
                 for k in ("overlap", "aggregation", "assign_size", "assign_timeout"))


def round_params(config):
    """Return the settings a round records with itself (what it trained and queried with).

    Parameters
    ----------
    config : dict
        A project's settings.

    Returns
    -------
    dict
        The round's parameters.
    """
    keys = ("width", "epochs", "min_steps", "train_batch_size", "lr", "mc_samples", "subsample",
            "holdout", "seed", "device", "batch_size")
    params = {k: config[k] for k in keys}
    if config.get("recipe", "scratch") != "scratch":  # projects without a recipe: as before
        params.update({k: config.get(k) for k in ("recipe", "encoder_epochs", "encoder_width")})
        params.update({k: config[k] for k in ("encoder_stem_stride", "encoder_feature_stages")
                       if config.get(k) is not None})  # projects before them: as before
    if config.get("aggregation", "majority") != "majority":  # several annotators' labels
        params["aggregation"] = config["aggregation"]
    if config.get("cost_aware"):  # asked for; the round's batch report says whether it was
        params.update(zip(("cost_aware", "cost_power", "time_model"), cost_settings(config)))
    return params
