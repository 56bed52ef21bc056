"""The recipe layer (skal.recipe): named recipes, make_recipe and its encoder cache, the one
estimator factory, ``skal run --recipe``, ``skal label init --recipe`` and labels saved."""

import hashlib
import json
import os
import pickle
import re

import numpy as np
import pytest
from label_helpers import DIGIT_CLASSES, true_label, write_digit_pngs
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from skal import (
    RECIPES,
    EmbeddingHeadClassifier,
    FixMatchClassifier,
    Recipe,
    ResNet18Classifier,
    badge,
    bald,
    get_recipe,
    make_recipe,
    margin_sampling,
)
from skal import recipe as recipes
from skal.cli import main
from skal.exceptions import ConfigError
from skal.experiment import ExperimentConfig, load_run
from skal.experiment.savings import labels_saved, labels_to_reach
from skal.labeling import Project

# a tiny encoder: seconds on 8x8 digits
ENC = dict(encoder_width=2, encoder_epochs=1, encoder_batch_size=64, flip=False)


@pytest.fixture(scope="module")
def pool(digits):
    X, y = digits
    return X[:160], y[:160], X[1000:1200], y[1000:1200]


@pytest.fixture(scope="module")
def head_recipe(pool):
    X, _, _, _ = pool
    recipes._ENCODERS.clear()
    return make_recipe("ssl-head", X, recipe_params=ENC, max_epochs=20, batch_size=32,
                       classes=np.arange(10))


# ---------------------------------------------------------------------------- registry
def test_named_recipes_and_overrides():
    assert {"scratch", "ssl-head", "ssl-finetune", "ssl-finetune+fixmatch"} <= set(RECIPES)
    assert RECIPES["ssl-head"].training == "head" and RECIPES["ssl-head"].strategy == "badge"
    r = get_recipe("ssl-finetune+pseudo_label", encoder_epochs=3)
    assert (r.training, r.semi_supervised, r.encoder_epochs) == ("finetune", "pseudo_label", 3)
    assert get_recipe(r) is r and not get_recipe("scratch").uses_encoder


@pytest.mark.parametrize("call, match", [
    (lambda: get_recipe("ssl-heads"), (r"Unknown recipe 'ssl-heads'\. Expected one of: "
                                      r"'scratch', .*'ssl-head'")),
    (lambda: get_recipe("ssl-head+mixmatch"), "Unknown recipe 'ssl-head\\+mixmatch'"),
    (lambda: get_recipe("ssl-head+fixmatch"), ("'semi_supervised' parameter of Recipe must be "
                                              "'none' with training='head'")),
    (lambda: get_recipe("scratch", epochs=3), r"Unknown Recipe fields \['epochs'\]"),
    (lambda: get_recipe("ssl-head", encoder_epochs=0), ("'encoder_epochs' parameter of Recipe "
                                                       r"must be an int in the range \[1, inf\)")),
    (lambda: get_recipe("scratch+fixmatch", threshold=0.0), r"'threshold' .* \(0\.0, 1\.0\]"),
    (lambda: Recipe("x", "frozen"), "'training' parameter of Recipe must be one of"),
    (lambda: get_recipe("ssl-head", encoder_feature_stages="some"),
     "'encoder_feature_stages' parameter of Recipe must be 'last' or 'all'. Got 'some'"),
    (lambda: recipes.register_recipe(RECIPES["scratch"]), "exists already"),
])
def test_bad_recipes_get_one_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------- the factory
def test_scratch_builds_the_resnet18_of_today():
    params = dict(width=4, dropout=0.3, lr=0.01, max_epochs=3, batch_size=16, random_state=7,
                  device="cpu", warm_start=False, classes=[0, 1], callbacks=None, preact=False)
    built = recipes.make_estimator("scratch", **params)
    assert type(built) is ResNet18Classifier
    assert built.get_params(deep=False) == ResNet18Classifier(**params).get_params(deep=False)
    semi = recipes.make_estimator("scratch+fixmatch", **params)
    assert type(semi) is FixMatchClassifier and semi.consistency == "fixmatch"


def test_one_factory_builds_waal_and_bgadl_for_both_command_lines(monkeypatch):
    from skal import BGADLClassifier, WAALClassifier
    from skal.experiment import ExperimentConfig, make_bgadl, make_waal
    from skal.labeling import DEFAULT_CONFIG
    from skal.labeling.service import build_estimator

    waal = recipes.make_estimator(model="waal", lr=0.01, max_epochs=3, query_size=5)
    assert isinstance(waal, WAALClassifier) and (waal.max_epochs, waal.query_size) == (3, 5)
    bgadl = recipes.make_estimator(model="bgadl", width=4, gen_weight=0.5)
    assert isinstance(bgadl, BGADLClassifier) and (bgadl.width, bgadl.gen_weight) == (4, 0.5)
    with pytest.raises(ValueError, match="The 'model' parameter of make_estimator must be one"):
        recipes.make_estimator(model="lenet")
    with pytest.raises(ValueError, match="must be 'scratch' with model='waal'"):
        recipes.make_estimator("ssl-head", model="waal")
    with pytest.raises(ValueError, match=r"takes no parameters \['query_size'\]"):
        recipes.make_estimator(query_size=5)
    built = []
    original = recipes.make_estimator

    def spy(*args, **kwargs):
        built.append(kwargs.get("model", "resnet18"))
        return original(*args, **kwargs)

    monkeypatch.setattr(recipes, "make_estimator", spy)
    config = ExperimentConfig(dataset="digits", method="waal", width=None)
    assert isinstance(make_waal(config, 0, np.arange(10)), WAALClassifier)
    assert isinstance(make_bgadl(ExperimentConfig(dataset="digits", method="bgadl"), 0,
                                 np.arange(10)), BGADLClassifier)
    assert isinstance(build_estimator(dict(DEFAULT_CONFIG, strategy="waal_uncertainty_diversity"),
                                      "waal", ["a", "b"], 0), WAALClassifier)
    assert built == ["waal", "bgadl", "waal"]


def test_make_recipe_head_fits_predicts_and_every_strategy_scores_it(head_recipe, pool):
    X, y, X_test, _y_test = pool
    est = head_recipe.estimator
    assert isinstance(est, Pipeline) and isinstance(est[-1], EmbeddingHeadClassifier)
    Z = head_recipe.transform(X_test)
    assert Z.shape == (len(X_test), head_recipe.encoder.embedding_dim_)
    np.testing.assert_allclose(Z, head_recipe.encoder.transform(X_test), rtol=1e-5, atol=1e-6)
    est.fit(X[:60], y[:60])
    assert est.predict(X_test).shape == (len(X_test),)
    assert est[-1].sample_proba(Z[:5], n_samples=3).shape == (3, 5, 10)
    for strategy in (margin_sampling, bald, badge):
        idx, _ = strategy(est, X[60:], 4, random_state=0)
        assert len(set(np.asarray(idx).tolist())) == 4
    # clone: the frozen features are shared, the head is a fresh unfitted copy
    copy = clone(est)
    assert copy[0] is est[0] and not hasattr(copy[-1], "classes_")
    # pickle: same predictions, the remembered rows are not saved
    again = pickle.loads(pickle.dumps(est))
    assert "_remembered" not in again[0].__dict__
    np.testing.assert_array_equal(again.predict_proba(X_test), est.predict_proba(X_test))


def test_the_encoder_is_fitted_once_and_reused_from_the_cache(tmp_path, pool):
    X, _, _, _ = pool
    recipes._ENCODERS.clear()
    first = recipes.fit_encoder(get_recipe("ssl-head", **ENC), X, random_state=1,
                                cache_dir=tmp_path)
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 1 and files[0].startswith("encoder-") and not first.fit_info_["cached"]
    mtime = os.path.getmtime(tmp_path / files[0])
    # other settings: another encoder; the same pool and settings in this process: the same one
    assert recipes.fit_encoder(get_recipe("ssl-head", **dict(ENC, encoder_epochs=2)), X,
                               random_state=1, cache_dir=tmp_path) is not first
    assert make_recipe("ssl-head", X, random_state=1, cache_dir=tmp_path,
                       recipe_params=ENC).encoder is first
    # another process (an empty in-process cache): loaded from the file, not refitted
    recipes._ENCODERS.clear()
    loaded = make_recipe("ssl-finetune", X, random_state=1, cache_dir=tmp_path,
                         recipe_params=ENC).encoder
    assert loaded.fit_info_["cached"] and os.path.getmtime(tmp_path / files[0]) == mtime
    np.testing.assert_array_equal(loaded.transform(X[:5]), first.transform(X[:5]))
    # another pool is another encoder
    recipes.fit_encoder(get_recipe("ssl-head", **ENC), X[:100], random_state=1,
                        cache_dir=tmp_path)
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".pkl")]) == 3


def test_one_key_in_two_cache_folders_is_two_encoders_named_by_their_files(tmp_path, pool):
    # two labelling projects with the same settings and seed in one process (same key)
    X, _, _, _ = pool
    recipes._ENCODERS.clear()
    recipe = get_recipe("ssl-head", **ENC)
    a = recipes.fit_encoder(recipe, X[:60], random_state=1, cache_dir=tmp_path / "a", key="k")
    b = recipes.fit_encoder(recipe, X[60:], random_state=1, cache_dir=tmp_path / "b", key="k")
    assert a is not b and os.listdir(tmp_path / "b") == ["encoder-k.pkl"]
    assert recipes.fit_encoder(recipe, X[:60], random_state=1, cache_dir=tmp_path / "a",
                               key="k") is a
    for encoder, folder in ((a, "a"), (b, "b")):
        data = (tmp_path / folder / "encoder-k.pkl").read_bytes()
        assert encoder.fit_info_["sha256"] == hashlib.sha256(data).hexdigest()
    recipes._ENCODERS.clear()  # loaded from the file: the file's digest again
    loaded = recipes.fit_encoder(recipe, X[:60], random_state=1, cache_dir=tmp_path / "a",
                                 key="k")
    assert loaded.fit_info_["cached"] and loaded.fit_info_["sha256"] == a.fit_info_["sha256"]
    assert recipes.fit_encoder(recipe, X[:60], random_state=1).fit_info_["sha256"] is None


def test_remembered_features_are_served_without_the_encoder(head_recipe, pool, monkeypatch):
    from skal import ContrastiveEncoder

    X, _, X_test, _ = pool
    features = recipes.EncodedFeatures(head_recipe.encoder)
    Z = np.arange(3 * head_recipe.encoder.embedding_dim_, dtype=np.float32).reshape(3, -1)
    assert features.remember(X_test[:3], Z) is features
    monkeypatch.setattr(ContrastiveEncoder, "transform", None)  # it must not run
    np.testing.assert_array_equal(features.transform(X_test[[2, 0]]), Z[[2, 0]])
    with pytest.raises(ValueError, match=r"The 'Z' parameter of EncodedFeatures.remember must "
                                         r"have shape \(2, 16\) .* Got shape \(2, 3\) instead"):
        features.remember(X[:2], np.zeros((2, 3)))


def test_a_cache_that_no_longer_unpickles_is_refitted(tmp_path, pool):
    # a cache written by another skal version names module paths that may be gone
    X, _, _, _ = pool
    recipes._ENCODERS.clear()
    recipe = get_recipe("ssl-head", **ENC)
    first = recipes.fit_encoder(recipe, X[:60], random_state=1, cache_dir=tmp_path)
    (path,) = [tmp_path / f for f in os.listdir(tmp_path)]
    # a pickle of a class from a module that does not exist
    path.write_bytes(b"cskal.encoder\nContrastiveEncoder\n.")
    recipes._ENCODERS.clear()
    with pytest.warns(UserWarning, match="cannot be loaded .*ModuleNotFoundError.*fitting it again"):
        again = recipes.fit_encoder(recipe, X[:60], random_state=1, cache_dir=tmp_path)
    assert not again.fit_info_["cached"]
    np.testing.assert_array_equal(again.transform(X[:5]), first.transform(X[:5]))
    recipes._ENCODERS.clear()  # the file was replaced by one that loads
    assert recipes.fit_encoder(recipe, X[:60], random_state=1,
                               cache_dir=tmp_path).fit_info_["cached"]


def test_finetune_and_fixmatch_start_from_the_encoder(head_recipe, pool):
    X, y, X_test, _ = pool
    prepared = make_recipe("ssl-finetune+fixmatch", X, recipe_params=ENC, max_epochs=1,
                           batch_size=32, classes=np.arange(10))
    assert prepared.needs_unlabeled  # the same encoder as ssl-head's (pool, settings, seed)
    np.testing.assert_allclose(prepared.encoder.transform(X[:5]),
                               head_recipe.encoder.transform(X[:5]), rtol=1e-5, atol=1e-6)
    est = prepared.estimator
    assert type(est) is FixMatchClassifier and est.width == ENC["encoder_width"]
    est.fit(X[:40], y[:40], X_unlabeled=X[40:])
    assert est.n_unlabeled_ == len(X) - 40
    trunk = est.module_.state_dict()
    assert est.sample_proba(X_test[:3], n_samples=2).shape == (2, 3, 10)
    assert any(k.startswith("conv1") for k in trunk)
    assert pickle.loads(pickle.dumps(est)).predict(X_test[:3]).shape == (3,)
    with pytest.raises(ValueError, match="must be a fitted skal.ContrastiveEncoder"):
        recipes.make_estimator("ssl-head", classes=np.arange(10)).fit(X[:20], y[:20])


def test_a_stride_2_encoder_gives_its_stride_to_the_finetuned_classifier(pool):
    X, y, _, _ = pool
    stride1 = recipes.get_recipe("ssl-finetune", **ENC)
    stride2 = recipes.get_recipe("ssl-finetune", **ENC, encoder_stem_stride=2)
    # the key of an encoder cached before the setting existed is unchanged
    assert "encoder_stem_stride" not in stride1.encoder_settings()
    assert recipes.encoder_key(stride1) != recipes.encoder_key(stride2)
    prepared = make_recipe(stride2, X, max_epochs=1, batch_size=32, classes=np.arange(10))
    assert prepared.encoder.trunk_.conv1.stride == (2, 2)
    est = prepared.estimator
    assert est.stem_stride == 2 and est.width == ENC["encoder_width"]
    est.fit(X[:40], y[:40])
    assert est.module_.conv1.stride == (2, 2)
    assert recipes.make_estimator(stride2, classes=np.arange(10)).stem_stride == 2  # no encoder


def test_an_all_stages_encoder_gives_the_head_its_wider_features(pool):
    X, y, X_test, _ = pool
    last = recipes.get_recipe("ssl-head", **ENC)
    stages = recipes.get_recipe("ssl-head", **ENC, encoder_feature_stages="all")
    assert "encoder_feature_stages" not in last.encoder_settings()  # old cache keys stay
    assert recipes.encoder_key(last) != recipes.encoder_key(stages)
    prepared = make_recipe(stages, X, max_epochs=1, batch_size=32, classes=np.arange(10))
    width = ENC["encoder_width"]
    assert prepared.encoder.feature_stages == "all"
    assert prepared.encoder.embedding_dim_ == 15 * width
    Z = prepared.encoder.transform(X[:40])
    assert Z.shape == (40, 15 * width)
    assert prepared.transform(X[:40]).shape == Z.shape  # the view strategies score on
    assert prepared.estimator.fit(X[:40], y[:40]).predict(X_test[:3]).shape == (3,)


# ---------------------------------------------------------------------------- skal run
RUN = ["--dataset", "digits", "--n-initial", "20", "--query-size", "10", "--rounds", "1",
       "--repeats", "1", "--pool-size", "150", "--test-size", "100", "--epochs", "2",
       "--encoder-width", "2", "--encoder-epochs", "1", "--encoder-batch-size", "64"]


def test_skal_run_recipe_head_tiny_run_and_resume_from_the_cache(tmp_path, capsys):
    recipes._ENCODERS.clear()
    out = tmp_path / "run"
    assert main(["run", "--recipe", "ssl-head", *RUN, "--out", str(out)]) == 0
    result = load_run(out)
    assert result.config.method == "badge"  # the recipe's own strategy
    assert result.config.width is None and result.config.encoder_epochs == 1
    assert [r["n_labeled"] for r in result.rows] == [20, 30]
    assert "EmbeddingHeadClassifier" in result.config.estimator
    encoders = os.listdir(out / "encoders")
    assert len(encoders) == 1
    assert "fitted once" in capsys.readouterr().out
    # extending the run in a new process loads the repeat's encoder instead of refitting it
    recipes._ENCODERS.clear()
    assert main(["run", "--recipe", "ssl-head", *RUN, "--rounds", "2", "--out", str(out)]) == 0
    assert "loaded from the cache" in capsys.readouterr().out
    assert os.listdir(out / "encoders") == encoders
    assert [r["n_labeled"] for r in load_run(out).rows] == [20, 30, 40]


def test_skal_run_stride_2_all_stages_encoder(tmp_path):
    # the benchmark's best recipe from the command line: a stride-2 encoder, all four stages
    recipes._ENCODERS.clear()
    out = tmp_path / "run"
    assert main(["run", "--recipe", "ssl-head", *RUN, "--rounds", "0", "--encoder-stem-stride",
                 "2", "--encoder-feature-stages", "all", "--out", str(out)]) == 0
    config = load_run(out).config
    assert (config.encoder_stem_stride, config.encoder_feature_stages) == (2, "all")
    assert "stem stride 2" in config.estimator and "all four stages" in config.estimator
    spec = config.recipe_spec()
    assert (spec.encoder_stem_stride, spec.encoder_feature_stages) == (2, "all")
    (encoder_file,) = os.listdir(out / "encoders")
    with open(out / "encoders" / encoder_file, "rb") as f:
        encoder = pickle.load(f)
    assert (encoder.stem_stride, encoder.feature_stages) == (2, "all")
    assert encoder.embedding_dim_ == 15 * 2  # width 2, four stages
    # the same run folder with the recipe's own encoder is another experiment
    assert main(["run", "--recipe", "ssl-head", *RUN, "--rounds", "0",
                 "--out", str(out)]) == 2


def test_a_run_saved_before_the_encoder_options_resumes(tmp_path):
    config = ExperimentConfig(dataset="digits", recipe="ssl-head", encoder_width=2)
    saved = config.to_dict()
    del saved["encoder_stem_stride"], saved["encoder_feature_stages"]  # an older config.json
    again = ExperimentConfig.from_dict(saved)
    assert again.identity() == config.identity()
    assert (again.encoder_stem_stride, again.encoder_feature_stages) == (1, "last")
    # without an encoder they are stored as unused
    plain = ExperimentConfig(dataset="digits")
    assert (plain.encoder_stem_stride, plain.encoder_feature_stages) == (None, None)


@pytest.mark.parametrize("kwargs, match", [
    (dict(encoder_stem_stride=3), "'encoder_stem_stride' parameter of ExperimentConfig must be "
                                  "one of (1, 2). Got 3"),
    (dict(encoder_stem_stride=True), "'encoder_stem_stride' parameter of ExperimentConfig"),
    (dict(encoder_stem_stride=2.0), "'encoder_stem_stride' parameter of ExperimentConfig"),
    (dict(encoder_feature_stages="first"), "'encoder_feature_stages' parameter of "
                                           "ExperimentConfig must be one of ('last', 'all')"),
    (dict(recipe="scratch", encoder_feature_stages="all"),
     "'encoder_feature_stages' parameter of ExperimentConfig does not apply to recipe=scratch"),
])
def test_bad_encoder_options_of_a_run(kwargs, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        ExperimentConfig(**{"dataset": "digits", "recipe": "ssl-head", **kwargs})


def test_skal_run_fixmatch_recipe_trains_on_the_pool(tmp_path):
    out = tmp_path / "fm"
    assert main(["run", "--recipe", "ssl-finetune+fixmatch", "--method", "margin", *RUN,
                 "--out", str(out)]) == 0
    config = load_run(out).config
    assert config.semi_supervised == "fixmatch" and "FixMatch" in config.estimator
    assert len(load_run(out).rows) == 2


@pytest.mark.parametrize("args, match", [
    (["--recipe", "nope"], "Unknown recipe 'nope'. Expected one of: 'scratch', "),
    (["--recipe", "ssl-head", "--semi-supervised", "fixmatch"],
     "--semi-supervised fixmatch does not apply to --recipe ssl-head"),
    (["--recipe", "ssl-head", "--method", "waal"],
     "--recipe ssl-head does not apply to --method waal"),
    (["--recipe", "ssl-head", "--width", "4"], "--width does not apply to --recipe ssl-head"),
])
def test_skal_run_bad_recipe_options_write_nothing(tmp_path, capsys, args, match):
    out = tmp_path / "bad"
    assert main(["run", "--dataset", "digits", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_skal_run_encoder_option_without_an_encoder_is_refused(tmp_path, capsys):
    assert main(["run", "--dataset", "digits", "--method", "random", "--encoder-epochs", "3",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--encoder-epochs option does not apply to --recipe scratch" in capsys.readouterr().err


# ---------------------------------------------------------------------------- skal label
LABEL = ["--batch-size", "6", "--epochs", "2", "--min-steps", "0", "--mc-samples", "2",
         "--holdout", "0.25", "--strategy", "margin_sampling", "--encoder-epochs", "1",
         "--encoder-width", "2"]


def _label_batch(project):
    for item in project.next_batch():
        project.label(item.image_id, true_label(item.path), annotator="me")


def test_skal_label_init_recipe_head_rounds_reuse_the_encoder(tmp_path, capsys):
    recipes._ENCODERS.clear()
    write_digit_pngs(tmp_path / "png", 40, size=8)
    proj = str(tmp_path / "proj")
    assert main(["label", "init", proj, "--images", str(tmp_path / "png"), "--classes",
                 ",".join(DIGIT_CLASSES), "--recipe", "ssl-head", *LABEL]) == 0
    assert "fits a SimCLR encoder" in capsys.readouterr().out
    with Project(proj) as project:
        assert project.config["recipe"] == "ssl-head"
        for _ in range(2):
            _label_batch(project)
        phases = []
        project.train_and_query(progress=lambda phase, *a: phases.append(phase))
        assert "pretraining the encoder" in phases
        files = sorted(os.listdir(os.path.join(proj, "encoder")))
        assert [f.split("-")[0] for f in files] == ["encoder", "features"]
        model = project.load_model()
        assert isinstance(model, Pipeline) and isinstance(model[-1], EmbeddingHeadClassifier)
        _label_batch(project)
        recipes._ENCODERS.clear()  # a new process: the encoder comes from PROJECT/encoder/
        phases.clear()
        project.train_and_query(progress=lambda phase, *a: phases.append(phase))
        assert "pretraining the encoder" not in phases
        assert sorted(os.listdir(os.path.join(proj, "encoder"))) == files
        assert len(project.next_batch()) == 6


def test_skal_label_init_stride_2_all_stages_encoder(tmp_path, capsys):
    recipes._ENCODERS.clear()
    write_digit_pngs(tmp_path / "png", 40, size=8)
    proj = tmp_path / "proj"
    assert main(["label", "init", str(proj), "--images", str(tmp_path / "png"), "--classes",
                 ",".join(DIGIT_CLASSES), "--recipe", "ssl-head", *LABEL,
                 "--encoder-stem-stride", "2", "--encoder-feature-stages", "all"]) == 0
    assert "(width 2, stem stride 2, 1 epochs)" in capsys.readouterr().out
    with Project(proj) as project:
        for _ in range(2):
            _label_batch(project)
        project.train_and_query()
        encoder = project.load_model()[0].encoder
        assert (encoder.stem_stride, encoder.feature_stages) == (2, "all")
        assert encoder.embedding_dim_ == 15 * 2
        assert len(project.next_batch()) == 6


@pytest.mark.parametrize("settings, match", [
    (dict(encoder_stem_stride=3), "'encoder_stem_stride' parameter must be None or one of (1, 2)"),
    (dict(encoder_stem_stride=2.0), "'encoder_stem_stride' parameter must be None or one of"),
    (dict(encoder_stem_stride=True), "'encoder_stem_stride' parameter must be None or one of"),
    (dict(encoder_feature_stages="middle"), "'encoder_feature_stages' parameter must be None or "
                                            "one of ('last', 'all')"),
    (dict(recipe="scratch", encoder_stem_stride=2), "'encoder_stem_stride' parameter applies to "
                                                     "recipes with an encoder"),
])
def test_bad_encoder_settings_of_a_project_write_nothing(tmp_path, settings, match):
    write_digit_pngs(tmp_path / "png", 10, size=8)
    with pytest.raises(ValueError, match=re.escape(match)):
        Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES,
                     **{"recipe": "ssl-head", **settings})
    assert not (tmp_path / "p").exists()


def test_skal_label_fixmatch_recipe_trains_on_the_pool(tmp_path):
    write_digit_pngs(tmp_path / "png", 40, size=8)
    project = Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, batch_size=6,
                           width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.25,
                           recipe="scratch+fixmatch")
    with project:
        for _ in range(2):
            _label_batch(project)
        project.train_and_query("bald")
        model = project.load_model()
        assert type(model) is FixMatchClassifier and model.n_unlabeled_ > 0


@pytest.mark.parametrize("extra, match", [
    (["--recipe", "ssl-heads"], "The 'recipe' parameter must be one of"),
    (["--recipe", "scratch", "--encoder-epochs", "2"], ("'encoder_epochs' parameter applies to "
                                                       "recipes with an encoder")),
    (["--recipe", "ssl-head", "--strategy", "waal_uncertainty_diversity"],
     "'recipe' parameter must be 'scratch' with model='waal'"),
    (["--recipe", "scratch", "--encoder-feature-stages", "all"],
     "'encoder_feature_stages' parameter applies to recipes with an encoder"),
    (["--recipe", "ssl-head", "--encoder-stem-stride", "3"], "invalid choice: 3"),
])
def test_skal_label_init_bad_recipe_writes_nothing(tmp_path, capsys, extra, match):
    write_digit_pngs(tmp_path / "png", 10, size=8)
    proj = tmp_path / "proj"
    assert main(["label", "init", str(proj), "--images", str(tmp_path / "png"), "--classes",
                 "a,b", *extra]) == 2
    assert match in capsys.readouterr().err
    assert not proj.exists()


# ---------------------------------------------------------------------------- labels saved
def test_labels_to_reach_interpolates():
    assert labels_to_reach([20, 60, 100], [0.5, 0.7, 0.8], 0.75) == 80.0
    assert labels_to_reach([20, 60], [0.9, 0.95], 0.75) == 20.0
    assert labels_to_reach([20, 60], [0.5, 0.6], 0.75) is None
    with pytest.raises(ValueError, match="same length"):
        labels_to_reach([20], [], 0.5)


class _Run:
    def __init__(self, curves):
        self.rows = [{"repeat": k, "n_labeled": n, "accuracy": a}
                     for k, curve in enumerate(curves) for n, a in curve]


def test_labels_saved_is_paired_by_repeat():
    base = _Run([[(20, 0.3), (100, 0.6)], [(20, 0.4), (100, 0.7)]])
    run = _Run([[(20, 0.5), (100, 0.8)], [(20, 0.55), (100, 0.65)]])
    saved = labels_saved(base, run)
    # repeat 0 reaches 0.6 at 20 + (0.1 / 0.3) * 80; repeat 1 never reaches 0.7
    assert saved["per_repeat"][0] == pytest.approx(20 + 80 / 3) and saved["per_repeat"][1] is None
    assert (saved["reached"], saved["missed"], saved["reference"]) == (1, 1, 100)
    # mean curves: the baseline 0.65 at 100, the run 0.525 -> 0.725: 20 + 0.625 * 80 = 70
    assert saved["mean_curve"] == pytest.approx(70.0)
    assert saved["ratio"] == pytest.approx(100 / 70)
    with pytest.raises(ValueError, match="no result at 50 labels"):
        labels_saved(base, run, reference=50)


def test_skal_compare_baseline_prints_and_writes_labels_saved(tmp_path, capsys):
    recipes._ENCODERS.clear()
    common = ["--dataset", "digits", "--n-initial", "20", "--query-size", "10", "--rounds", "1",
              "--repeats", "1", "--pool-size", "150", "--test-size", "100", "--epochs", "2"]
    assert main(["run", "--method", "random", "--width", "2", *common,
                 "--out", str(tmp_path / "base")]) == 0
    assert main(["run", "--recipe", "ssl-head", "--method", "random", *common,
                 "--encoder-width", "2", "--encoder-epochs", "1",
                 "--out", str(tmp_path / "head")]) == 0
    capsys.readouterr()
    summary = tmp_path / "saved.json"
    assert main(["compare", str(tmp_path / "head"), "--baseline", str(tmp_path / "base"),
                 "--out", str(tmp_path / "c.png"), "--summary", str(summary)]) == 0
    out = capsys.readouterr().out
    assert "labels saved: random + ssl-head vs random + scratch at 30 labels" in out
    rows = json.loads(summary.read_text())
    assert [r["reference"] for r in rows] == [20, 30] and rows[0]["run"] == "random + ssl-head"
    assert os.path.isfile(tmp_path / "c.png")
