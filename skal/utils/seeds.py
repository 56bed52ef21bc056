"""Integer seeds: the one range, wrap, derivation and draw every skal seed goes through.

A seed is an int in ``[0, MAX_SEED)`` (``2**31 - 1``, what torch, numpy and scikit-learn all
accept). :func:`wrap_seed` brings any int into that range, :func:`derive_seed` makes
independent seeds of one seed for numbered purposes (``skal run``'s pools, rounds and queries, a
BGADL classifier's VAE-ACGAN stream), :func:`draw_seed` draws one from a numpy ``Generator``.
Imports nothing at module level (numpy inside :func:`derive_seed`), so the configuration layer can
import it without loading a numerical library.
"""

import numbers

__all__ = ["MAX_SEED", "derive_seed", "draw_seed", "wrap_seed"]

#: Seeds are ints in ``[0, MAX_SEED)``.
MAX_SEED = 2**31 - 1


def wrap_seed(value: int) -> int:
    """Bring an int into the seed range.

    Parameters
    ----------
    value : int
        Any integer, a numpy integer too (a seed plus a round number, a numpy draw, ...).

    Returns
    -------
    seed : int
        ``int(value) % MAX_SEED``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a bool is not).

    See Also
    --------
    derive_seed : Independent seeds of one seed.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"A seed must be an int. Got {value!r} instead.")
    return int(value) % MAX_SEED


def derive_seed(seed: int, *keys: int) -> int:
    """Derive an int seed from ``seed`` and integer ``keys``.

    Parameters
    ----------
    seed : int
        The run's seed.
    *keys : int
        What the seed is for (a repeat, a round, ...); other keys give independent seeds.

    Returns
    -------
    int
        A seed in ``[0, 2**31 - 1)``, the same for the same arguments.

    See Also
    --------
    wrap_seed : Bring an int into the seed range.

    Examples
    --------
    >>> from skal.experiment import derive_seed
    >>> derive_seed(0, 1, 2) == derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    True
    """
    import numpy as np

    return wrap_seed(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def draw_seed(rng) -> int:
    """Draw a seed from a numpy ``Generator``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator; one integer is drawn from it.

    Returns
    -------
    seed : int
        A seed in ``[0, MAX_SEED)``.

    See Also
    --------
    wrap_seed : Bring an int into the seed range.
    """
    return int(rng.integers(MAX_SEED))
