"""skal.utils.seeds: the one seed range, wrap, derivation and draw (issue 31: one derive_seed)."""

import numpy as np
import pytest

from skal.utils.seeds import MAX_SEED, derive_seed, draw_seed, wrap_seed


def test_wrap_seed_brings_ints_into_the_range():
    assert MAX_SEED == 2**31 - 1
    assert [wrap_seed(v) for v in (0, 5, MAX_SEED, MAX_SEED + 3, -1)] == [0, 5, 0, 3, MAX_SEED - 1]
    assert wrap_seed(np.uint32(2**32 - 1)) == (2**32 - 1) % MAX_SEED
    for bad in (1.5, True, "3", None):
        with pytest.raises(TypeError, match="A seed must be an int"):
            wrap_seed(bad)


def test_derive_seed_is_numpys_seed_sequence_wrapped():
    # the formula skal run's seeds (and so every committed run folder) were made with
    state = np.random.SeedSequence([3, 4, 0, 2]).generate_state(1)[0]
    assert derive_seed(3, 4, 0, 2) == int(state) % (2**31 - 1)
    assert derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    assert 0 <= derive_seed(2**40, 7) < MAX_SEED


def test_one_derive_seed_for_the_runner_and_bgadl():
    import skal.experiment
    from skal import BGADLClassifier

    assert skal.experiment.derive_seed is derive_seed
    net = BGADLClassifier(random_state=11)
    seed = net._fit_seed(continued=False)
    assert net._gan_seed == derive_seed(seed, 7)  # its VAE-ACGAN's own stream


def test_draw_seed_draws_once_in_the_range():
    a, b = np.random.default_rng(0), np.random.default_rng(0)
    assert draw_seed(a) == int(b.integers(MAX_SEED))
    assert draw_seed(a) == int(b.integers(MAX_SEED))  # one draw each
