"""skal.utils.params: scikit-learn's parameter validation as skal uses it (pins its private API)."""

import inspect
from typing import ClassVar

import numpy as np
import pytest

from skal.utils.params import (
    COUNT,
    SEED,
    Choice,
    Float,
    Hidden,
    Int,
    InvalidParameterError,
    Satisfies,
    check_params,
    class_constraints,
    deprecated_value,
    validates,
)
from skal.utils.shapes import check_image_shape


class _Owner:
    _parameter_constraints: ClassVar[dict] = {"a": [Int(1)], "b": [None, Choice("x", "y")]}

    def __init__(self, a=1, b=None):
        self.a, self.b = a, b

    def get_params(self, deep=False):
        return {"a": self.a, "b": self.b}


class _Child(_Owner):
    _parameter_constraints: ClassVar[dict] = {"a": [Float(0, None, closed="neither")], "c": [Int(0)]}


def test_scikit_learns_message_and_error_type():
    with pytest.raises(InvalidParameterError) as info:
        check_params(_Owner(a=0))
    assert str(info.value) == ("The 'a' parameter of _Owner must be an int in the range [1, inf). "
                               "Got 0 instead.")
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    with pytest.raises(ValueError, match=r"The 'b' parameter of f must be None or a str among "
                       r"\{'x', 'y'\}\. Got 'z' instead\."):
        check_params(None, _Owner._parameter_constraints, {"b": "z"}, caller_name="f")


def test_constraints_merge_along_the_mro_and_unknown_names_are_skipped():
    assert list(class_constraints(_Child)) == ["a", "b", "c"]
    assert isinstance(class_constraints(_Child)["a"][0], Float)  # the subclass's entry wins
    check_params(_Child(a=0.5))  # "c" has a constraint but is no parameter: not checked
    with pytest.raises(ValueError, match="'a' parameter of _Child must be a float"):
        check_params(_Child(a=0))


@pytest.mark.parametrize("value, ok", [(1, True), (np.int64(3), True), (True, False),
                                       (np.bool_(True), False), (1.0, False), (0, False)])
def test_int_excludes_bools(value, ok):
    assert Int(1).is_satisfied_by(value) is ok


@pytest.mark.parametrize("value, ok", [(0.5, True), (1, True), (np.float32(2), True),
                                       (float("inf"), False), (float("nan"), False),
                                       (True, False), ("1", False), (0.0, False)])
def test_float_is_finite_and_no_bool(value, ok):
    assert Float(0, None, closed="neither").is_satisfied_by(value) is ok


def test_descriptions_are_scikit_learns():
    assert str(Int(1)) == "an int in the range [1, inf)"
    assert str(Int(0, 5)) == "an int in the range [0, 5]"
    assert str(Float(0, 1, closed="left")) == "a float in the range [0.0, 1.0)"
    assert str(Float()) == "a float in the range (-inf, inf)"
    assert str(Choice("b", "a", deprecated=("c",))) == "a str among {'b', 'a', 'c' (deprecated)}"
    assert str(Satisfies(callable, "a callable")) == "a callable"


def test_hidden_and_special_constraints_of_scikit_learn():
    constraints = {"p": ["boolean", Hidden(Choice("deprecated"))], "q": [callable, None]}
    check_params(None, constraints, {"p": "deprecated", "q": len}, caller_name="f")
    with pytest.raises(ValueError, match=r"'p' parameter of f must be an instance of 'bool' or "
                       r"an instance of 'numpy.bool_?'\. Got 'x'"):  # hidden: not listed
        check_params(None, constraints, {"p": "x"}, caller_name="f")


def test_satisfies_treats_a_failing_predicate_as_invalid():
    pair = Satisfies(lambda v: len(v) == 2, "a pair")
    assert pair.is_satisfied_by((1, 2)) and not pair.is_satisfied_by(3)


def test_deprecated_value():
    with pytest.warns(DeprecationWarning, match="The value 'old' of the 'p' parameter of X is "
                      "deprecated: use 'new'"):
        assert deprecated_value("old", {"old": "new"}, "p", "X") == "new"
    assert deprecated_value(0.3, {"old": "new"}, "p", "X") == 0.3


# ------------------------------------------------------------------ functions: validates
@validates({"n": [COUNT], "mode": [Choice("a", "b", description="one of ('a', 'b')")],
            "random_state": [SEED]})
def _strategy(X, n=1, mode="a", *, random_state=None):
    """A function with constrained arguments."""
    return X, n, mode, random_state


def test_ranges_have_one_wording_scikit_learns():
    assert str(COUNT) == "an int in the range [1, inf)"
    assert str(SEED) == "None, an int in the range [0, inf), a RandomState or a Generator"
    assert str(Float(0, 1, closed="right")) == "a float in the range (0.0, 1.0]"
    for make in (lambda: Int(1, description="an int >= 1"),
                 lambda: Float(0, None, closed="neither", description="a finite float > 0")):
        with pytest.raises(TypeError, match="description"):  # ranges are not reworded
            make()
    assert str(Choice("a", "b", description="one of ('a', 'b')")) == "one of ('a', 'b')"


@pytest.mark.parametrize("args, kwargs, message", [
    ((0, 0), {}, "The 'n' parameter of _strategy must be an int in the range [1, inf). Got 0 "
                 "instead."),
    ((0,), {"n": True}, "The 'n' parameter of _strategy must be an int in the range [1, inf). "
                        "Got True instead."),
    ((0, 1, "c"), {}, "The 'mode' parameter of _strategy must be one of ('a', 'b'). Got 'c' "
                      "instead."),
    ((0,), {"random_state": -1}, "The 'random_state' parameter of _strategy must be None, an "
                                 "int in the range [0, inf), a RandomState or a "
                                 "Generator. Got -1 instead."),
])
def test_validates_checks_positional_and_keyword_arguments(args, kwargs, message):
    with pytest.raises(InvalidParameterError) as info:
        _strategy(*args, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("random_state", [None, 0, np.int64(3), np.random.RandomState(0),
                                          np.random.default_rng(0)])
def test_validates_passes_valid_arguments_through(random_state):
    assert _strategy("X", 2, mode="b", random_state=random_state) == ("X", 2, "b", random_state)
    assert _strategy("X") == ("X", 1, "a", None)  # defaults: checked once, at decoration


def test_validates_keeps_the_functions_name_signature_and_docstring():
    assert _strategy.__name__ == "_strategy"
    assert _strategy.__doc__ == "A function with constrained arguments."
    assert list(inspect.signature(_strategy).parameters) == ["X", "n", "mode", "random_state"]


def test_validates_refuses_a_bad_default_or_an_unknown_name_at_decoration():
    with pytest.raises(InvalidParameterError, match=r"'n' parameter of f must be an int in the "
                                                    r"range \[1, inf\)"):
        @validates({"n": [COUNT]})
        def f(n=0):
            return n
    with pytest.raises(TypeError, match=r"g has no parameter\(s\) \['m'\] to constrain"):
        @validates({"m": [COUNT]})
        def g(n=1):
            return n


KEYWORDS = {"random_state", "n_samples", "subsample", "block_elements", "mode", "temperature",
            "n_neighbors", "embedding", "utility"}


def test_every_strategy_and_selector_declares_its_constraints():
    import skal.query._batch
    import skal.query
    import skal.query.selection

    for module in (skal.query, skal.query._batch, skal.query.selection):
        for name in module.__all__:
            fn = getattr(module, name)
            if set(inspect.signature(fn).parameters) & KEYWORDS:
                assert hasattr(fn, "__wrapped__"), f"{module.__name__}.{name} is not @validates"


# ------------------------------------------------------------------ one image-shape check
@pytest.mark.parametrize("kwargs, shape, message", [
    ({}, (1, 0, 8), (r"must be None or a tuple \(C, H, W\), each an int in the range \[1, inf\) "
                     r"\(one of them may be -1")),
    ({}, (-1, -1, 8), "must be None or a tuple"),
    ({"optional": False, "owner": "Net"}, (1, -1, 8),
     r"The 'image_shape' parameter of Net must be a tuple \(C, H, W\), each an int in the range "
     r"\[1, inf\)\. Got"),
    ({"optional": False, "min_side": 4}, (1, 3, 8),
     r"with C an int in the range \[1, inf\) and H and W each an int in the range \[4, inf\)"),
    ({"optional": False, "in_channels": 3}, (1, 8, 8), "must start with in_channels=3"),
])
def test_image_shape_check(kwargs, shape, message):
    with pytest.raises(ValueError, match=message):
        check_image_shape(shape, **kwargs)


def test_image_shape_check_accepts():
    assert check_image_shape(None) is None
    assert check_image_shape([3, -1, 32]) == (3, -1, 32)
    assert check_image_shape((1, 4, 4), optional=False, min_side=4) == (1, 4, 4)
    with pytest.raises(ValueError):
        check_image_shape(None, optional=False)


# ------------------------------------------------------------------ one wording for ranges
def _check(est):
    return lambda: check_params(est)


def _hand_written_range_errors():
    """(raises, message) of the range errors that no constraint raises, and of the Satisfies
    constraints that describe a range in their own words."""
    import torch

    from skal import BGADLClassifier, ContrastiveEncoder, WAALClassifier
    from skal.data import Pool
    from skal.data import check_image_size
    from skal.losses import waal_uncertainty
    from skal.nets import BGADLLeNet, LeNetFeatures, ResNet18

    return [
        (lambda: Pool(np.zeros((3, 2)), chunk_size=0),
         "The 'chunk_size' parameter must be None or an int in the range [1, inf). Got 0 "
         "instead."),
        (lambda: check_image_size((0, 3), "load_image_folder"),
         "The 'image_size' parameter of load_image_folder must be None, an int in the range "
         "[1, inf) or a pair (height, width) of such ints. Got (0, 3) instead."),
        (lambda: waal_uncertainty(torch.zeros(2, 3), mixture=1.5),
         "The 'mixture' parameter of waal_uncertainty must be a float in the range [0.0, 1.0]. "
         "Got 1.5 instead."),
        (lambda: ResNet18(n_classes=0),
         "The 'in_channels', 'n_classes' and 'width' parameters of ResNet18 must each be an int "
         "in the range [1, inf). Got 1, 0 and 64 instead."),
        (lambda: BGADLLeNet(image_shape=(1, 8, 8)),
         "The 'image_shape' parameter of BGADLLeNet must be a tuple (C, H, W) with H and W each "
         "an int in the range [12, inf). Got (1, 8, 8) instead."),
        (lambda: LeNetFeatures(image_shape=(1, 15, 28)),
         "The 'image_shape' parameter of LeNetFeatures must be a tuple (C, H, W) with H and W "
         "each an int in the range [16, inf). Got (1, 15, 28) instead."),
        (_check(BGADLClassifier(gan_betas=(0.5, 1.0))),
         "The 'gan_betas' parameter of BGADLClassifier must be a pair of floats, each in the "
         "range [0.0, 1.0). Got (0.5, 1.0) instead."),
        (_check(WAALClassifier(lr_milestones=(0.5, 0))),
         "The 'lr_milestones' parameter of WAALClassifier must be None or a sequence of floats, "
         "each in the range (0.0, 1.0]. Got (0.5, 0) instead."),
        (_check(ContrastiveEncoder(crop_scale=(0.5, 0.2))),
         "The 'crop_scale' parameter of ContrastiveEncoder must be a pair (low, high) of floats, "
         "each in the range (0.0, 1.0], with low <= high. Got (0.5, 0.2) instead."),
    ]


def test_hand_written_range_messages_use_scikit_learns_wording():
    for raises, message in _hand_written_range_errors():
        with pytest.raises(ValueError) as info:
            raises()
        assert str(info.value) == message


def test_bgadl_new_rows_range_uses_scikit_learns_wording():
    from skal import BGADLClassifier

    clf = BGADLClassifier()
    clf._new_rows = 0
    with pytest.raises(ValueError, match=r"must be None, an int in the range \[1, 5\], indices "):
        clf._new_mask(5)
