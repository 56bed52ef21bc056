"""The batch-aware strategies (skal.query._batch) and the estimators' embed(X).

Fake estimators with fixed predict_proba / sample_proba / embed pin each strategy to its pure
selector; tiny fitted nets check the wiring (embed, learners, Pipelines, seeding).
"""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from torch import nn

import skal
from skal import (
    ActiveLearner,
    MCDropoutClassifier,
    ResNet18Classifier,
    WAALClassifier,
    badge,
    batch_bald,
    coreset,
    power_bald,
    stochastic_batch,
    typiclust,
)
from skal.query import bald_scores, entropy, least_confidence, margin
from skal.query.selection import (
    badge_select,
    batchbald_select,
    kcenter_greedy,
    stochastic_select,
    typiclust_select,
)

N = 40
RNG = np.random.default_rng(0)
PROBA = RNG.dirichlet(np.ones(3), N)  # (n, C)
SAMPLES = RNG.dirichlet(np.full(3, 0.5), (6, N))  # (T, n, C)
Z = np.concatenate([RNG.normal(loc=5 * (i % 4), size=(1, 5)) for i in range(N)])  # 4 blobs
POOL = np.arange(N).reshape(-1, 1)  # rows index the fixed outputs


class Fixed:
    """A fake fitted estimator with fixed outputs, counting its calls."""

    def __init__(self, proba_in_embed=True):
        self.calls = []
        if not proba_in_embed:  # an embed(X) without return_proba
            self.embed = lambda X: self._log("embed", Z[self._rows(X)])

    def _rows(self, X):
        return np.asarray(X, dtype=int).ravel()

    def _log(self, name, out):
        self.calls.append(name)
        return out

    def predict_proba(self, X):
        return self._log("predict_proba", PROBA[self._rows(X)])

    def sample_proba(self, X, n_samples=20, random_state=None):
        return self._log("sample_proba", SAMPLES[:, self._rows(X)])

    def embed(self, X, *, return_proba=False):
        rows = self._rows(X)
        out = (Z[rows], PROBA[rows]) if return_proba else Z[rows]
        return self._log("embed+proba" if return_proba else "embed", out)


# ---------------------------------------------------------------------------- against the selectors
def test_batch_bald_is_the_selector_on_the_samples():
    est = Fixed()
    idx, gains = batch_bald(est, POOL, 4)
    ref_idx, ref_gains = batchbald_select(SAMPLES, 4)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(gains, ref_gains)
    assert est.calls == ["sample_proba"]
    sub, _ = batch_bald(Fixed(), POOL, 3, subsample=10, random_state=0)
    np.testing.assert_array_equal(sub, batch_bald(Fixed(), POOL, 3, subsample=10,
                                                  random_state=0)[0])


def test_badge_uses_one_pass_for_features_and_probabilities():
    est = Fixed()
    idx, d2 = badge(est, POOL, 6, random_state=1)
    ref_idx, ref_d2 = badge_select(PROBA, Z, 6, random_state=1)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(d2, ref_d2)
    assert est.calls == ["embed+proba"]
    other = Fixed(proba_in_embed=False)  # embed without return_proba: embed, then predict_proba
    np.testing.assert_array_equal(badge(other, POOL, 6, random_state=1)[0], ref_idx)
    assert other.calls == ["embed", "predict_proba"]


def test_coreset_centres_on_the_labelled_features():
    pool, labelled = POOL[8:], POOL[:8]
    idx, dist = coreset(Fixed(), pool, 5, X_labeled=labelled)
    ref_idx, ref_dist = kcenter_greedy(Z[8:], 5, labeled=Z[:8])
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist)


def test_typiclust_one_point_per_blob_and_seeded():
    idx, typ = typiclust(Fixed(), POOL, 4, n_neighbors=3, random_state=0)
    assert sorted(np.asarray(idx) % 4) == [0, 1, 2, 3]  # one per blob (blob = row % 4)
    np.testing.assert_array_equal(idx, typiclust(Fixed(), POOL, 4, n_neighbors=3,
                                                 random_state=0)[0])
    # with labelled rows of blobs 0 and 1, the batch of 2 comes from blobs 2 and 3
    idx, _ = typiclust(Fixed(), POOL[8:], 2, X_labeled=POOL[:2], n_neighbors=3, random_state=0)
    assert sorted((idx + 8) % 4) == [2, 3]


@pytest.mark.parametrize("utility, scores", [
    ("bald", bald_scores(SAMPLES)),
    ("entropy", entropy(PROBA)),
    ("least_confidence", least_confidence(PROBA)),
    ("margin", 1 - margin(PROBA)),
])
@pytest.mark.parametrize("mode", ["power", "softmax", "softrank"])
def test_stochastic_batch_samples_the_utility(utility, scores, mode):
    idx, got = stochastic_batch(Fixed(), POOL, 5, utility=utility, mode=mode, temperature=0.7,
                                random_state=3)
    rng = np.random.default_rng(3)
    if utility == "bald":
        rng.integers(2**31 - 1)  # the dropout seed is drawn first
    ref = stochastic_select(np.maximum(scores, 0) if mode == "power" else scores, 5, mode=mode,
                            temperature=0.7, random_state=rng)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(got, scores[idx], atol=1e-12)


def test_power_bald_is_seeded_stochastic_batch():
    a = power_bald(Fixed(), POOL, 6, random_state=5)
    b = stochastic_batch(Fixed(), POOL, 6, utility="bald", mode="power", random_state=5)
    np.testing.assert_array_equal(a[0], b[0])
    batches = {tuple(power_bald(Fixed(), POOL, 6, random_state=s)[0]) for s in range(5)}
    assert len(batches) > 1
    custom = stochastic_batch(Fixed(), POOL, 3, utility=lambda est, X: Z[X.ravel(), 0] ** 2,
                              random_state=0)
    assert len(set(custom[0].tolist())) == 3


# ---------------------------------------------------------------------------- errors
def test_bad_arguments():
    logreg = LogisticRegression().fit(PROBA, np.arange(N) % 2)
    with pytest.raises(TypeError, match="batch_bald needs an estimator with a sample_proba"):
        batch_bald(logreg, PROBA, 2)
    with pytest.raises(TypeError, match="power_bald needs an estimator with a sample_proba"):
        power_bald(logreg, PROBA, 2)
    with pytest.raises(ValueError, match=r"'subsample' parameter of batch_bald must be None or an "
                                         r"int in the range \[1, inf\)\. Got 0 instead"):
        batch_bald(Fixed(), POOL, 2, subsample=0)
    with pytest.raises(ValueError, match="'utility' parameter of stochastic_batch must be one of"):
        stochastic_batch(Fixed(), POOL, 2, utility="variance")
    with pytest.raises(ValueError, match=r"must return one score per pool sample, shape \(40,\)"):
        stochastic_batch(Fixed(), POOL, 2, utility=lambda est, X: np.ones(3))
    with pytest.raises(ValueError, match="'mode' parameter of stochastic_batch must be one of"):
        stochastic_batch(Fixed(), POOL, 2, utility="entropy", mode="top")
    with pytest.raises(ValueError, match=r"'temperature' parameter of power_bald must be a float in "
                                         r"the range \(0\.0, inf\)\. Got -1\.0 instead"):
        power_bald(Fixed(), POOL, 2, temperature=-1.0)
    with pytest.raises(ValueError, match="'n_configurations' parameter of batch_bald"):
        batch_bald(Fixed(), POOL, 2, n_configurations=0)
    with pytest.raises(ValueError, match="'embedding' parameter of badge must be None, 'input'"):
        badge(Fixed(), POOL, 2, embedding="penultimate")
    with pytest.raises(ValueError, match="The embedding given to coreset returned 3 rows for 40"):
        coreset(Fixed(), POOL, 2, embedding=lambda X: np.ones((3, 2)))
    with pytest.raises(ValueError, match="have 2 columns but the pool features have 1"):
        coreset(Fixed(), POOL, 2, X_labeled=np.ones((3, 2)), embedding="input")
    with pytest.raises(ValueError, match="have 2 columns but the pool features have 1"):
        typiclust(Fixed(), POOL, 2, X_labeled=np.ones((3, 2)), embedding="input")
    with pytest.raises(ValueError, match="'max_clusters' parameter of typiclust"):
        typiclust(Fixed(), POOL, 2, max_clusters=0)
    for strategy in (batch_bald, power_bald, badge, coreset, typiclust):
        with pytest.raises(ValueError, match="'n_instances' parameter must be an int"):
            strategy(Fixed(), POOL, N + 1)


def test_badge_without_predict_proba_and_nan_features():
    class NoProba:
        pass

    with pytest.raises(TypeError, match="badge needs an estimator with predict_proba"):
        badge(NoProba(), POOL, 1)
    with pytest.raises(ValueError, match="'embedding' given to badge_select contains NaN"):
        badge(Fixed(), POOL, 1, embedding=lambda X: np.full((len(X), 2), np.nan))


# ---------------------------------------------------------------------------- embed on real nets
def test_resnet_embed_is_features_in_one_pass(digits_small, tiny_resnet):
    X, _ = digits_small
    Zr, proba = tiny_resnet.embed(X[100:150], return_proba=True)
    assert Zr.shape == (50, 32) and Zr.dtype == np.float32  # 8 * width
    module = tiny_resnet.module_
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = module.features(torch.as_tensor(tiny_resnet._check_fitted_X(X[100:150])))
    finally:
        module.train(was_training)
    np.testing.assert_allclose(Zr, expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba, tiny_resnet.predict_proba(X[100:150]), atol=1e-6)
    np.testing.assert_array_equal(tiny_resnet.embed(X[100:150]), Zr)


def test_mlp_embed_is_the_last_hidden_activation_and_mode_is_restored():
    rng = np.random.default_rng(0)
    X = rng.random((30, 4)).astype(np.float32)
    mlp = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 2))
    clf = MCDropoutClassifier(mlp, max_epochs=1, random_state=0).fit(X, np.arange(30) % 2)
    clf.module_.train()
    Zm = clf.embed(X)
    assert clf.module_.training  # restored
    with torch.no_grad():
        hidden = torch.relu(clf.module_[0](torch.as_tensor(X)))
    np.testing.assert_allclose(Zm, hidden.numpy(), rtol=1e-6)


def test_embed_needs_a_linear_layer_and_a_fitted_model():
    class Pooled(nn.Module):  # logits from a conv and a pool: no nn.Linear anywhere
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    X = np.random.default_rng(0).random((12, 1, 6, 6)).astype(np.float32)
    clf = MCDropoutClassifier(Pooled(), max_epochs=1, random_state=0).fit(X, np.arange(12) % 2)
    with pytest.raises(TypeError, match="MCDropoutClassifier.embed returns the input of the "
                                        "module's last nn.Linear layer, but Pooled has no"):
        clf.embed(X)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ResNet18Classifier().embed(X)


def test_waal_embed_is_the_head_hidden_layer():
    rng = np.random.default_rng(0)
    X = rng.random((24, 1, 8, 8), dtype=np.float32)
    y = np.r_[np.arange(12) % 3, -np.ones(12, dtype=int)]
    clf = WAALClassifier(max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    Zw, proba = clf.embed(X, return_proba=True)
    assert Zw.shape == (24, clf.hidden)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-6)
    idx, _ = coreset(clf, X[12:], 3, X_labeled=X[:12])
    assert len(set(idx.tolist())) == 3


# ---------------------------------------------------------------------------- learners, pipelines
STRATEGIES = {
    "batch_bald": (batch_bald, {"n_samples": 4}),
    "power_bald": (power_bald, {"n_samples": 4}),
    "stochastic_batch": (stochastic_batch, {"utility": "entropy", "mode": "softrank"}),
    "badge": (badge, {}),
    "coreset": (coreset, {}),
    "typiclust": (typiclust, {"n_neighbors": 3}),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategies_in_skal_active_learner(name, digits_small, tiny_resnet):
    strategy, kwargs = STRATEGIES[name]
    X, y = digits_small
    learner = ActiveLearner(tiny_resnet, query_strategy=strategy)
    learner.X_training_, learner.y_training_ = X[:100], y[:100]  # as fit would leave them
    idx, X_query, scores = learner.query(X[100:220], n_instances=5, return_metrics=True,
                                         random_state=0, **kwargs)
    assert idx.dtype == np.int64 and len(set(idx.tolist())) == 5 and idx.max() < 120
    np.testing.assert_array_equal(X_query, X[100:220][idx])
    assert np.shape(scores) == (5,)
    again, _ = learner.query(X[100:220], n_instances=5, random_state=0, **kwargs)
    np.testing.assert_array_equal(again, idx)  # seeded


def test_coreset_and_typiclust_take_the_learners_labelled_set(digits_small, tiny_resnet):
    X, y = digits_small
    learner = ActiveLearner(tiny_resnet, query_strategy=coreset)
    learner.X_training_, learner.y_training_ = X[:100], y[:100]
    via_learner = coreset(learner, X[100:300], 6)
    explicit = coreset(tiny_resnet, X[100:300], 6, X_labeled=X[:100])
    np.testing.assert_array_equal(via_learner[0], explicit[0])
    assert not np.array_equal(coreset(tiny_resnet, X[100:300], 6, random_state=0)[0],
                              explicit[0])  # without the labelled set: another batch
    via_learner = typiclust(learner, X[100:300], 6, random_state=0)
    explicit = typiclust(tiny_resnet, X[100:300], 6, X_labeled=X[:100], random_state=0)
    np.testing.assert_array_equal(via_learner[0], explicit[0])


def test_strategies_through_a_pipeline_and_cold_start(digits_small):
    X, y = digits_small
    flat = X.reshape(len(X), -1).astype(np.float32)
    pipe = make_pipeline(
        MinMaxScaler(), ResNet18Classifier(width=4, max_epochs=1, image_shape=(1, 8, 8),
                                           random_state=0),
    ).fit(flat[:60], y[:60])
    for strategy in (badge, coreset, batch_bald):
        idx, _ = strategy(pipe, flat[60:160], 4, random_state=0)
        assert len(set(idx.tolist())) == 4
    # cold start: no fitted model, TypiClust clusters the input itself
    idx, _ = typiclust(ResNet18Classifier(), X, 10, random_state=0)
    ref, _ = typiclust(ResNet18Classifier(), X, 10, embedding="input", random_state=0)
    np.testing.assert_array_equal(idx, ref)


def test_exports():
    for name in ("batch_bald", "stochastic_batch", "power_bald", "badge", "coreset", "typiclust"):
        assert getattr(skal, name) is getattr(skal.query, name)
        assert name in skal.__all__ and name in skal.query.__all__
    assert typiclust_select is skal.query.selection.typiclust_select


# ---------------------------------------------------------------------------- the CLI
def test_skal_run_with_every_batch_method(tmp_path, capsys):
    from skal.cli import main
    from skal.experiment import METHODS, load_run

    names = ["batch_bald", "power_bald", "badge", "coreset", "typiclust"]
    assert set(names) <= set(METHODS)
    tiny = ["--dataset", "digits", "--n-initial", "20", "--query-size", "10", "--rounds", "1",
            "--repeats", "1", "--pool-size", "120", "--test-size", "60", "--width", "2",
            "--epochs", "1", "--batch-size", "32", "--mc-samples", "4", "--quiet"]
    assert main(["run", *tiny, "--methods", ",".join(names), "--out", str(tmp_path)]) == 0
    for name in names:
        result = load_run(tmp_path / name)
        assert [row["n_labeled"] for row in result.rows] == [20, 30]
        assert len(set(result.labeled[0].tolist())) == 30  # 10 new, distinct pool indices


@pytest.mark.parametrize("strategy", [batch_bald, power_bald, stochastic_batch, badge, coreset,
                                      typiclust])
def test_random_state_checked_and_list_pools(strategy):
    with pytest.raises(ValueError, match=rf"The 'random_state' parameter of {strategy.__name__} "
                                         r"must be None, an int in the range \[0, inf\)"):
        strategy(Fixed(), POOL, 2, random_state=-1)
    as_list = POOL.tolist()
    np.testing.assert_array_equal(strategy(Fixed(), as_list, 3, random_state=0)[0],
                                  strategy(Fixed(), POOL, 3, random_state=0)[0])


def test_mc_strategies_refuse_a_module_without_dropout(digits_small):
    X, y = digits_small
    clf = ResNet18Classifier(width=2, dropout=0.0, max_epochs=1, random_state=0).fit(X[:40],
                                                                                    y[:40])
    for strategy in (batch_bald, power_bald):
        with pytest.raises(ValueError, match=f"{strategy.__name__} needs stochastic passes"):
            strategy(clf, X[40:80], 2, n_samples=2)
    with pytest.raises(ValueError, match="'n_samples' parameter of batch_bald must be an int"):
        batch_bald(Fixed(), POOL, 2, n_samples=0)
