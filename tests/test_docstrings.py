"""numpydoc validation of the public API, under scikit-learn's own filter.

scikit-learn's ``sklearn/tests/test_docstrings.py`` runs ``numpydoc.validate.validate`` on every
public estimator, method and function and ignores a few checks; this file applies the same rules
(see :func:`sklearn_filter`) to skal's public API (``tests/public_api.py``).
"""

import inspect
import os
import re
import textwrap

import pytest
from public_api import PUBLIC_MODULES, public_names, public_objects

import skal

numpydoc_validate = pytest.importorskip(
    "numpydoc.validate",
    reason="numpydoc is not installed; it is in skal's 'test' extra: pip install -e '.[test]'",
)
from numpydoc.docscrape import NumpyDocString  # noqa: E402

OBJECTS = list(public_objects(PUBLIC_MODULES))


def sklearn_filter(errors, klass=None, method=None):
    """The errors scikit-learn's docstring test keeps (``filter_errors`` in its test file).

    Ignored everywhere: RT02 (the first line of Returns may name the value, not only its type),
    GL01 and GL02 (blank lines around the docstring). Ignored for properties: PR02 and GL08
    (their signature cannot be parsed). Ignored for methods and functions, kept for classes:
    ES01 (extended summary), SA01 (See Also) and EX01 (Examples).
    """
    for code, message in errors:
        if code in ("RT02", "GL01", "GL02"):
            continue
        if code in ("PR02", "GL08") and klass is not None and method is not None and isinstance(
            inspect.getattr_static(klass, method), property
        ):
            continue
        if code in ("EX01", "SA01", "ES01") and (method is not None or not inspect.isclass(klass)):
            continue
        yield code, message


@pytest.mark.parametrize(
    "path, klass, method, obj", OBJECTS, ids=[path for path, *_ in OBJECTS]
)
def test_numpydoc_validation(path, klass, method, obj):
    result = numpydoc_validate.validate(path)
    target = klass if klass is not None else obj
    errors = list(sklearn_filter(result["errors"], klass=target, method=method))
    assert not errors, f"{path}:\n" + "\n".join(f"  {code}: {msg}" for code, msg in errors)


def test_the_walk_covers_the_api():
    # the enumeration itself: every public module is walked and the big classes' own methods are in
    paths = {path for path, *_ in OBJECTS}
    assert {"skal.query._uncertainty.bald", "skal.estimators._classifier.MCDropoutClassifier.sample_proba",
            "skal.estimators.waal._classifier.WAALClassifier.critic_score", "skal.learner._learner.ActiveLearner.teach",
            "skal.experiment.runner.run_experiment", "skal.exceptions.DivergenceError",
            "skal.datasets.load_digits_images", "skal.estimators._encoder.ContrastiveEncoder",
            "skal.estimators._head.EmbeddingHeadClassifier", "skal.estimators._fixmatch.FixMatchMixin",
            "skal.query._low_budget.probcover", "skal.data.transforms.weak_augment",
            "skal.query.selection.badge_select", "skal.nets.resnet.ResNet18.forward",
            "skal.labeling.project.Project.label", "skal.labeling.store.LabelStore.add_answer",
            "skal.estimators._accelerate.AcceleratedResNet18Classifier"} <= paths
    # inherited skorch methods are skorch's docstrings, not walked
    assert "skal.estimators._classifier.MCDropoutClassifier.get_params_for" not in paths
    # every module file and package of skal without a leading underscore is a public module
    root = os.path.dirname(skal.__file__)
    on_disk = {"skal"}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(("_", "."))
                         and os.path.isfile(os.path.join(folder, d, "__init__.py"))]
        package = "skal" if folder == root else "skal." + os.path.relpath(folder, root).replace(
            os.sep, ".")
        on_disk.add(package)
        on_disk.update(f"{package}.{f[:-3]}" for f in files
                       if f.endswith(".py") and not f.startswith("_"))
    assert on_disk == set(PUBLIC_MODULES)


def test_the_shared_parameters_are_written_once():
    # the strategies' shared Parameters text lives in skal.query._docstrings only; fill_doc writes it
    # into each docstring, which then holds no placeholder
    from skal.query._docstrings import SHARED_PARAMETERS, fill_doc

    root = os.path.dirname(skal.__file__)
    sources = {}
    for folder, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                sources[os.path.relpath(path, root)] = open(path, encoding="utf-8").read()
    docs = [obj.__doc__ or "" for _, _, obj in public_names() if inspect.isfunction(obj)]
    for name, text in SHARED_PARAMETERS.items():
        block = textwrap.indent(text, "    ")
        copies = [path for path, src in sources.items() if block in src]
        assert copies == [], f"{name!r} is written out in {copies}: use {{{name}}} and fill_doc"
        assert any(block in doc for doc in docs), f"no docstring uses {name!r}"
    placeholder = re.compile(r"^[ \t]*\{[A-Za-z_]\w*\}[ \t]*$", re.M)
    assert [d for d in docs if placeholder.search(d)] == []

    def strategy():
        """Summary.

        Parameters
        ----------
        {no_such_entry}
        """

    with pytest.raises(KeyError, match="no_such_entry"):
        fill_doc(strategy)


STRATEGIES = [name for module, name, obj in public_names()
              if module == "skal.query" and callable(obj)]


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_has_an_example(name):
    import skal.query

    doc = NumpyDocString(inspect.getdoc(getattr(skal.query, name)) or "")
    assert any(">>>" in line for line in doc["Examples"]), (
        f"skal.query.{name} has no Examples section with a doctest"
    )
