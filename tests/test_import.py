"""What ``import skal`` loads, checked in fresh interpreters (sys.modules is shared in pytest)."""

import json
import os
import subprocess
import sys

import pytest

import skal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "sklearn", "skorch", "scipy", "imblearn", "torchvision", "matplotlib")


def fresh(code):
    """Run code in a new interpreter with this checkout first on the path; return its JSON."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# One fresh interpreter runs these stages in order and records, after each, which heavy packages
# are in sys.modules (cumulative: a package absent after a stage was loaded by no earlier one).
STAGES = [
    ("bare", "import skal"),
    ("api", "from skal import ResNet18Classifier, bald, ActiveLearner"),
    ("estimators", "from skal import MCDropoutClassifier, WAALClassifier, "
                   "waal_uncertainty_diversity"),
    ("submodules", "import skal.nets, skal.losses, skal.datasets, skal.query, skal.learner"),
    ("star", "from skal import *"),
    ("everything", "import skal.estimators.bgadl._augmenter, skal.experiment, skal.cli"),
]

CHAIN = f"""
import json, sys
out = {{"loaded": {{}}}}
for stage, statement in {STAGES!r}:
    ns = {{}}
    exec(statement, ns)
    out["loaded"][stage] = [m for m in {HEAVY!r} if m in sys.modules]
    if stage == "bare":
        import skal
        out["dir_before_use"] = dir(skal)
        out["submodules"] = [skal.query.__name__, skal.nets.__name__]
    if stage == "star":
        out["star"] = sorted(k for k in ns if k != "__builtins__")
ok = {{}}
for name in skal.__all__:
    ns = {{}}
    exec(f"from skal import {{name}}", ns)
    ok[name] = ns[name] is getattr(skal, name)
out["ok"] = ok
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def chain():
    return fresh(CHAIN)


def test_import_skal_loads_nothing_heavy():
    # Not torchvision above all (it pulls in torch._dynamo, sympy and triton); the public names
    # are loaded on first use.
    code = "import json, sys, skal\nprint(json.dumps([m for m in HEAVY if m in sys.modules]))"
    out = fresh(f"HEAVY = {HEAVY!r}\n" + code)
    assert out == []


@pytest.mark.parametrize("stage", ["api", "estimators", "submodules"])
def test_public_api_without_torchvision_or_imblearn(chain, stage):
    loaded = set(chain["loaded"][stage])
    assert {"torch", "skorch"} <= loaded  # the stage did import the estimators
    assert "torchvision" not in loaded
    assert "imblearn" not in loaded  # only GenerativeAugmenter needs imbalanced-learn


def test_nothing_imports_torchvision(chain):
    assert "torchvision" not in chain["loaded"]["everything"]
    assert "imblearn" in chain["loaded"]["star"]  # GenerativeAugmenter is still an imblearn sampler


def test_every_public_name_imports_in_a_fresh_interpreter(chain):
    assert chain["ok"] == {name: True for name in skal.__all__}
    assert chain["star"] == sorted(skal.__all__)
    assert set(skal.__all__) <= set(chain["dir_before_use"])


def test_submodules_are_attributes_after_a_bare_import(chain):
    assert chain["submodules"] == ["skal.query", "skal.nets"]


def test_lazy_names_are_the_submodules_objects():
    from skal import estimators, learner, query
    from skal.estimators import bgadl, waal

    assert skal.ResNet18Classifier is estimators.ResNet18Classifier
    assert skal.MCDropoutClassifier is estimators.MCDropoutClassifier
    assert skal.GenerativeAugmenter is bgadl.GenerativeAugmenter is estimators.GenerativeAugmenter
    assert skal.ActiveLearner is learner.ActiveLearner
    assert skal.WAALClassifier is waal.WAALClassifier
    for name in ("bald", "entropy_sampling", "margin_sampling", "random_sampling",
                 "uncertainty_sampling", "waal_uncertainty_diversity"):
        assert getattr(skal, name) is getattr(query, name)
    assert set(skal.__all__) <= set(dir(skal))
    assert {"query", "nets", "datasets"} <= set(dir(skal))


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="module 'skal' has no attribute 'ResNet50'"):
        skal.ResNet50  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'ResNet50' from 'skal'"):
        exec("from skal import ResNet50", {})


@pytest.mark.parametrize("module", ["skal.query._batch", "skal.query", "skal.query.selection"])
def test_each_query_module_imports_first_in_a_fresh_interpreter(module):
    # skal.query re-exports the batch and low-budget strategies and the pure scores of
    # skal.query._scores; when skal.query._batch imported skal.query, importing it first failed with
    # "cannot import name 'badge' from partially initialized module"
    out = fresh(
        f"import json, {module}, skal.query as q\n"
        "print(json.dumps([getattr(q, n).__module__ for n in q.__all__]))"
    )
    assert set(out) == {"skal.query._uncertainty", "skal.query._scores", "skal.query._batch",
                        "skal.query._low_budget"}
    assert out.count("skal.query._uncertainty") == 6 and out.count("skal.query._batch") == 6 and out.count("skal.query._low_budget") == 2
    assert out.count("skal.query._scores") == 5
