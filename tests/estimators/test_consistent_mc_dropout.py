"""Consistent MC dropout: pass t of ``sample_proba`` is one weight draw for the whole pool.

Every row gets the same dropout masks in pass t, whatever the batch, the chunk, the order of the
rows or the number of calls that score them with one seed. Joint scores need it: with a mask per
row, BatchBALD took two copies of one image for two independent points.
"""

import numpy as np
import pytest
import torch
from scipy.special import xlogy
from torch import nn

from skal import MCDropoutClassifier, WAALClassifier, batch_bald, bald
from skal.estimators._mc_dropout import ConsistentDropout
from skal.data import Pool
from skal.query import bald_scores
from skal.query.selection import batchbald_select


class SplitNet(nn.Module):
    """``features`` (deterministic) then a dropout head: the head-cached MC path."""

    def __init__(self, d=16, hidden=32, n_classes=10):
        super().__init__()
        self.proj = nn.Linear(d, hidden)
        self.dropout = nn.Dropout(0.5)
        self.linear = nn.Linear(hidden, n_classes)

    def features(self, x):
        return torch.relu(self.proj(x))

    def head(self, z):
        return self.linear(self.dropout(z))

    def forward(self, x):
        return self.head(self.features(x))


def _split_net_classifier(scale=3.0, n_classes=10, seed=0):
    """A SplitNet classifier with random weights; ``scale`` sharpens each pass (confident
    passes that disagree: a duplicate tells nothing new, a new point does)."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(40, 16)).astype(np.float32), np.arange(40) % n_classes
    clf = MCDropoutClassifier(SplitNet, module__n_classes=n_classes, max_epochs=1,
                              random_state=seed).fit(X, y)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in clf.module_.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
        clf.module_.linear.weight.mul_(scale)
    return clf


def _duplicate_pool(images, copies=25):
    return np.repeat(images, copies, axis=0)  # (n * copies, ...): copies of a row are adjacent


@pytest.fixture(scope="module")
def waal_net(digits_small):
    X, y = digits_small
    y = y[:120].copy()
    y[80:] = -1
    return WAALClassifier(max_epochs=1, batch_size=16, random_state=0).fit(X[:120], y)


# ------------------------------------------------------------------ one mask per pass
@pytest.mark.parametrize("model", ["resnet", "split", "waal"])
def test_copies_of_one_image_get_the_same_probabilities_in_every_pass(
    model, tiny_resnet, waal_net, digits_small
):
    X, _ = digits_small
    if model == "split":
        clf, images = _split_net_classifier(), np.random.default_rng(1).normal(
            size=(6, 16)).astype(np.float32)
    else:  # WAAL's LeNet has Dropout2d in its features: the whole net runs every pass
        clf, images = (tiny_resnet if model == "resnet" else waal_net), X[200:206]
    pool = _duplicate_pool(images, copies=7)
    samples = clf.sample_proba(pool, n_samples=8, random_state=0)  # (T, 42, C)
    per_image = samples.reshape(8, 6, 7, -1)  # (T, image, copy, C)
    # equal up to float rounding: a convolution kernel may sum a batch row in another order by
    # its place in the batch (seen: 1.5e-8 on some AVX512 CPUs); another mask moves it by > 1e-3
    np.testing.assert_allclose(per_image, np.broadcast_to(per_image[:, :, :1], per_image.shape),
                               rtol=0, atol=1e-6)
    assert np.ptp(samples, axis=0).max() > 1e-3  # and the passes still differ


def test_a_row_does_not_depend_on_the_batch_the_order_or_the_calls(tiny_resnet, digits_small):
    X, _ = digits_small
    rows = X[200:290]
    whole = tiny_resnet.sample_proba(rows, n_samples=6, random_state=3)
    order = np.random.default_rng(0).permutation(len(rows))
    shuffled = tiny_resnet.sample_proba(rows[order], n_samples=6, random_state=3)
    np.testing.assert_allclose(shuffled, whole[:, order], atol=1e-6)
    halves = np.concatenate([tiny_resnet.sample_proba(rows[:31], n_samples=6, random_state=3),
                             tiny_resnet.sample_proba(rows[31:], n_samples=6, random_state=3)],
                            axis=1)
    np.testing.assert_allclose(halves, whole, atol=1e-6)
    small_batches = tiny_resnet.set_params(batch_size=7).sample_proba(rows, n_samples=6,
                                                                       random_state=3)
    tiny_resnet.set_params(batch_size=128)
    np.testing.assert_allclose(small_batches, whole, atol=1e-6)


def test_bald_scores_do_not_depend_on_the_chunks(tiny_resnet, digits_small, tmp_path):
    X, _ = digits_small
    np.save(tmp_path / "pool.npy", X[100:400])
    memmap = np.load(tmp_path / "pool.npy", mmap_mode="r")
    idx, scores = bald(tiny_resnet, X[100:400], 300, n_samples=5, random_state=0)
    for chunk in (37, 128):
        idx_c, scores_c = bald(tiny_resnet, Pool(memmap, chunk_size=chunk), 300, n_samples=5,
                               random_state=0)
        np.testing.assert_allclose(scores_c, scores, atol=1e-6)
        np.testing.assert_array_equal(idx_c, idx)


@pytest.mark.parametrize("layer, x_shape, per_channel", [
    (nn.Dropout(0.3), (2, 4, 3, 5), False),  # one draw per element
    (nn.Dropout2d(0.3), (2, 4, 3, 5), True),  # one per channel, broadcast over space
    (nn.Dropout1d(0.3), (2, 4, 6), True),
])
def test_masks_keep_one_minus_p_and_have_the_layer_s_shape(layer, x_shape, per_channel):
    net = nn.Sequential(layer)
    n_passes = 4000
    with ConsistentDropout(net, n_passes, seed=0) as mc, torch.no_grad():
        outs = []
        for t in range(n_passes):
            mc.t = t
            outs.append(net(torch.ones(x_shape)))
    assert layer.training and not layer._forward_hooks  # its mode as before, hooks gone
    out = torch.stack(outs)  # (T, 2, C, ...)
    assert torch.equal(out[:, 0], out[:, 1])  # both rows: the same mask
    np.testing.assert_allclose(np.unique(out.numpy()), [0.0, 1 / 0.7], rtol=1e-6)
    kept = (out[:, 0] != 0).flatten(2)  # (T, C, rest)
    assert abs(kept.float().mean().item() - 0.7) < 0.02
    whole_channels = torch.equal(kept.all(-1), kept.any(-1))  # a channel kept or dropped whole
    assert whole_channels == per_channel


@pytest.mark.parametrize("layer", [nn.AlphaDropout(0.2), nn.FeatureAlphaDropout(0.2)])
def test_alpha_dropout_gives_torch_s_two_values(layer):
    x = torch.full((3, 4, 2, 2), 0.7)
    with ConsistentDropout(nn.Sequential(layer), 50, seed=1) as mc, torch.no_grad():
        ours = set()
        for t in range(50):
            mc.t = t
            out = layer(x)
            assert torch.equal(out[0], out[1])
            ours |= set(np.round(out.unique().numpy(), 5).tolist())
    layer.train()
    torch.manual_seed(0)
    reference = set(np.round(layer(x.repeat(50, 1, 1, 1)).detach().unique().numpy(), 5).tolist())
    layer.eval()
    assert ours == reference and len(ours) == 2


def test_modes_and_the_global_rng_are_left_as_they_were(tiny_resnet, digits_small):
    X, _ = digits_small
    state = torch.random.get_rng_state()
    tiny_resnet.sample_proba(X[:5], n_samples=3, random_state=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not any(m.training for m in tiny_resnet.module_.modules())
    assert not tiny_resnet.module_.dropout._forward_hooks


# ------------------------------------------------------------------ BatchBALD on duplicates
@pytest.mark.parametrize("n_samples", [20, 50])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batchbald_takes_a_new_image_while_the_passes_are_not_yet_resolved(n_samples, seed):
    """20 images x 25 copies, confident passes: a copy of a chosen image adds nothing, so every
    pick is a new image until the batch's joint information reaches log T (the T passes are
    then told apart: no point can add more, and later picks are ties). Two classes, so that an
    image tells at most log 2 nats and the passes are told apart only after several images."""
    clf = _split_net_classifier(scale=3.0, n_classes=2)
    images = np.random.default_rng(seed + 10).normal(size=(20, 16)).astype(np.float32)
    idx, gains = batch_bald(clf, _duplicate_pool(images), 10, n_samples=n_samples,
                            random_state=seed)
    image = idx // 25
    informed = np.cumsum(gains) < 0.9 * np.log(n_samples)  # before the passes are resolved
    first = image[:informed.sum() + 1]  # those picks and the one that resolves them
    assert len(first) >= 5
    assert len(set(first)) == len(first), image
    if n_samples == 50:  # log 50 nats leave room for ten images; log 20 only for about five
        assert len(set(image)) >= 9
    # top-k BALD takes 1: its ten picks are copies of one image
    top_k, _ = bald(clf, _duplicate_pool(images), 10, n_samples=n_samples, random_state=seed)
    assert len(set(top_k // 25)) == 1


def test_batchbald_gain_of_a_copy_is_its_information_given_the_first(tiny_resnet, digits_small):
    """With soft passes a second copy is still informative (its label is a second, conditionally
    independent draw): its gain is I(y'; w | y) = H(y, y') - H(y) - H(y' | w), below its BALD."""
    X, _ = digits_small
    samples = tiny_resnet.sample_proba(_duplicate_pool(X[200:203], copies=2), n_samples=20,
                                       random_state=0)  # (T, 6, C)
    idx, _ = batchbald_select(samples, 2, n_configurations=10_000)
    first = idx[0]
    copy = first + 1 if first % 2 == 0 else first - 1
    p = samples[:, first]  # (T, C), the same for the copy
    joint = np.einsum("ti,tj->ij", p, p) / len(p)  # p(y, y') = E_w p(y|w) p(y'|w)
    h_joint, h_one = -xlogy(joint, joint).sum(), -xlogy(p.mean(0), p.mean(0)).sum()
    h_cond = -xlogy(p, p).sum(1).mean()
    gain_of_copy = h_joint - h_one - h_cond
    assert 0 < gain_of_copy < bald_scores(samples)[first]
    _, gains2 = batchbald_select(samples[:, [first, copy]], 2, n_configurations=10_000)
    np.testing.assert_allclose(gains2[1], gain_of_copy, rtol=1e-3)  # float32 samples


def test_batchbald_redux_consistent_dropout_agrees_on_the_same_weights():
    """batchbald-redux's ConsistentMCDropout on skal's weights: the same kind of masks (mean and
    spread of each row's probabilities over many passes agree) and the same greedy picks."""
    redux = pytest.importorskip("batchbald_redux.consistent_mc_dropout",
                                reason="batchbald-redux 2.0.5 (test-only reference) missing")
    redux_bb = pytest.importorskip("batchbald_redux.batchbald")
    clf = _split_net_classifier(scale=0.3)
    net = clf.module_

    class ReduxNet(redux.BayesianModule):
        def __init__(self):
            super().__init__()
            self.proj, self.linear = net.proj, net.linear
            self.dropout = redux.ConsistentMCDropout(0.5)

        def mc_forward_impl(self, x):
            return torch.log_softmax(self.linear(self.dropout(torch.relu(self.proj(x)))), -1)

    images = np.random.default_rng(5).normal(size=(20, 16)).astype(np.float32)
    pool = _duplicate_pool(images, copies=5)
    reference = ReduxNet().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        log_probs = reference(torch.as_tensor(pool), 4000)  # (n, T, C), one mask per pass
    theirs = log_probs.exp().permute(1, 0, 2).numpy()  # (T, n, C)
    ours = clf.sample_proba(pool, n_samples=4000, random_state=0)
    np.testing.assert_array_equal(theirs.reshape(4000, 20, 5, -1)[:, :, 0],
                                  theirs.reshape(4000, 20, 5, -1)[:, :, 4])  # theirs: consistent
    np.testing.assert_allclose(ours.mean(0), theirs.mean(0), atol=0.03)
    np.testing.assert_allclose(ours.std(0), theirs.std(0), atol=0.03)
    # their greedy BatchBALD and ours on our samples, and ours on theirs: the same picks
    samples = clf.sample_proba(pool, n_samples=20, random_state=0)
    log_probs = torch.log(torch.as_tensor(samples).double().clamp_min(1e-300))
    ref = redux_bb.get_batchbald_batch(log_probs.permute(1, 0, 2), 3, 100_000,
                                       dtype=torch.double)  # (n, T, C) for redux
    idx, _ = batchbald_select(samples, 3, n_configurations=100_000)
    assert idx.tolist() == ref.indices
    assert len(set(idx // 5)) == 3
