"""The committed outputs of tiny `skal run` experiments and `skal label` rounds rebuild:
results.jsonl (without its wall-clock columns), the labelled pool indices in acquisition order,
and the batch a labelling round picks with its scores and guesses.

The reference files were written by ``tests/reference_loops.py`` before ``skal run`` and
``skal label`` were moved onto :class:`skal.ActiveLearner` (one loop); any change to what a round
trains on, its seeds, what it hands a strategy or how it reads the picks moves them.

What is picked, in which order, and every count, name and label must be identical; a float may
differ in its last digits (relative 1e-4). On the CPU the trained weights depend on torch's
kernels and on how the math libraries block their sums for a CPU model: two AVX512 CPUs differed
by 4e-7 (relative), the AVX512 references and an AVX2 CPU by 1.2e-5 (a coreset distance, a
difference of close numbers). A change to the loop moves far more than that, or moves a pick.
The comparison runs with the torch build and thread count of ``machine.json`` (one thread, as
conftest.py pins it), on a CPU whose kernels it was checked on.
"""

import json
import math
import os

import pytest
import reference_loops as ref

#: how far a float may move between CPUs (seen: 1.2e-5 relative, see above)
RTOL, ATOL = 1e-4, 1e-7
#: torch's CPU kernels the references were compared on: made on AVX512, checked on AVX2
CHECKED_CAPABILITIES = ("AVX512", "AVX2")

# the tiny models learn nothing in one epoch: what is compared is what they pick
pytestmark = pytest.mark.filterwarnings("ignore::skal.exceptions.ChanceAccuracyWarning")


def _reference(name):
    path = os.path.join(ref.REFERENCE, name)
    with open(path) as f:
        return f.read()


def _differences(actual, expected, where=""):
    """Where two decoded JSON values differ beyond the float tolerance (a list of strings)."""
    if isinstance(expected, float) or isinstance(actual, float):
        ok = (isinstance(actual, (int, float)) and isinstance(expected, (int, float))
              and not isinstance(actual, bool) and not isinstance(expected, bool)
              and math.isclose(actual, expected, rel_tol=RTOL, abs_tol=ATOL))
        return [] if ok else [f"{where}: {actual!r} != {expected!r}"]
    if isinstance(expected, dict) and isinstance(actual, dict):
        if list(actual) != list(expected):
            return [f"{where}: keys {list(actual)} != {list(expected)}"]
        return [d for key in expected
                for d in _differences(actual[key], expected[key], f"{where}.{key}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return [f"{where}: {len(actual)} items != {len(expected)}"]
        return [d for i, (a, e) in enumerate(zip(actual, expected))
                for d in _differences(a, e, f"{where}[{i}]")]
    return [] if actual == expected and type(actual) is type(expected) else [
        f"{where}: {actual!r} != {expected!r}"]


def assert_same_lines(actual, name):
    """``actual`` (JSON lines) is the committed file ``name``, floats to ``RTOL``."""
    expected = _reference(name)
    actual_rows, expected_rows = actual.splitlines(), expected.splitlines()
    assert len(actual_rows) == len(expected_rows), (
        f"{name}: {len(actual_rows)} lines, the reference has {len(expected_rows)}")
    problems = [d for i, (a, e) in enumerate(zip(actual_rows, expected_rows))
                for d in _differences(json.loads(a), json.loads(e), f"line {i + 1}")]
    assert not problems, f"{name} differs:\n" + "\n".join(problems[:20])


def test_the_float_tolerance_is_tight():
    assert not _differences({"a": [1, 0.1, "x", None]}, {"a": [1, 0.1 + 1e-8, "x", None]})
    assert _differences({"a": 0.1}, {"a": 0.1001})  # a moved number
    assert _differences({"a": 1}, {"a": 2})  # a count or a pick: exact
    assert _differences({"a": 1}, {"a": True})
    assert _differences({"a": "8"}, {"a": "3"})  # a guess
    assert _differences([1, 2], [2, 1])  # an order
    assert _differences({"a": 1, "b": 2}, {"b": 2, "a": 1})  # a column order
    assert _differences({"a": None}, {"a": 0.0})


@pytest.fixture(scope="module")
def same_machine():
    recorded = json.loads(_reference("machine.json"))
    here = ref.machine()
    same = (here["torch"] == recorded["torch"] and here["threads"] == recorded["threads"]
            and here["cpu_capability"] in CHECKED_CAPABILITIES)
    if not same:
        pytest.skip(f"the reference outputs were made with {recorded} and checked on "
                    f"{CHECKED_CAPABILITIES}; this machine is {here}: the same seeds give other "
                    "weights with other kernels")


@pytest.mark.usefixtures("same_machine")
@pytest.mark.parametrize("name", sorted(ref.RUNS))
def test_skal_run_rebuilds_the_committed_run(name, tmp_path):
    results, labeled = ref.run_lines(ref.RUNS[name], tmp_path / name)
    assert labeled == _reference(f"run-{name}.labeled.jsonl")
    assert_same_lines(results, f"run-{name}.results.jsonl")


@pytest.mark.usefixtures("same_machine")
def test_an_extended_run_rebuilds_the_committed_run(tmp_path):
    # round 1's query happens after a restart (the catch-up query of an extended run)
    config = ref.RUNS["bald"]
    ref.run_lines(dict(config, n_rounds=1), tmp_path)
    results, labeled = ref.run_lines(config, tmp_path)
    assert labeled == _reference("run-bald.labeled.jsonl")
    assert_same_lines(results, "run-bald.results.jsonl")


@pytest.mark.usefixtures("same_machine")
@pytest.mark.parametrize("name", sorted(ref.ROUNDS))
def test_a_labelling_round_picks_the_committed_batch(name, tmp_path):
    assert_same_lines(ref.label_round(ref.ROUNDS[name], tmp_path), f"label-{name}.batch.jsonl")


@pytest.mark.usefixtures("same_machine")
def test_the_comparison_can_fail(tmp_path):
    # another seed picks other samples: the comparison notices
    results, labeled = ref.run_lines(dict(ref.RUNS["random"], seed=1), tmp_path)
    assert labeled != _reference("run-random.labeled.jsonl")
