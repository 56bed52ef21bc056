"""The committed outputs of tiny `skal run` experiments and `skal label` rounds rebuild byte for
byte: results.jsonl (without its wall-clock columns), the labelled pool indices in acquisition
order, and the batch a labelling round picks with its scores and guesses.

The reference files were written by ``tests/reference_loops.py`` before ``skal run`` and
``skal label`` were moved onto :class:`skal.ActiveLearner` (one loop); any change to what a round
trains on, its seeds, what it hands a strategy or how it reads the picks moves them. On the CPU
the trained weights depend on torch's kernels, so the comparison runs on a machine with the
torch build and CPU kernels of ``machine.json`` (and one torch thread, as conftest.py pins it).
"""

import json
import os

import pytest
import reference_loops as ref

# the tiny models learn nothing in one epoch: what is compared is what they pick
pytestmark = pytest.mark.filterwarnings("ignore::skal.exceptions.ChanceAccuracyWarning")


def _reference(name):
    path = os.path.join(ref.REFERENCE, name)
    with open(path) as f:
        return f.read()


@pytest.fixture(scope="module", autouse=True)
def same_machine():
    recorded = json.loads(_reference("machine.json"))
    here = ref.machine()
    if here != recorded:
        pytest.skip(f"the reference outputs were made with {recorded}, this machine is {here}: "
                    "the same seeds give other weights with other kernels")


@pytest.mark.parametrize("name", sorted(ref.RUNS))
def test_skal_run_rebuilds_the_committed_run(name, tmp_path):
    results, labeled = ref.run_lines(ref.RUNS[name], tmp_path / name)
    assert labeled == _reference(f"run-{name}.labeled.jsonl")
    assert results == _reference(f"run-{name}.results.jsonl")


def test_an_extended_run_rebuilds_the_committed_run(tmp_path):
    # round 1's query happens after a restart (the catch-up query of an extended run)
    config = ref.RUNS["bald"]
    ref.run_lines(dict(config, n_rounds=1), tmp_path)
    results, labeled = ref.run_lines(config, tmp_path)
    assert labeled == _reference("run-bald.labeled.jsonl")
    assert results == _reference("run-bald.results.jsonl")


@pytest.mark.parametrize("name", sorted(ref.ROUNDS))
def test_a_labelling_round_picks_the_committed_batch(name, tmp_path):
    assert ref.label_round(ref.ROUNDS[name], tmp_path) == _reference(f"label-{name}.batch.jsonl")


def test_the_comparison_can_fail(tmp_path):
    # another seed picks other samples: the byte comparison notices
    results, labeled = ref.run_lines(dict(ref.RUNS["random"], seed=1), tmp_path)
    assert labeled != _reference("run-random.labeled.jsonl")
