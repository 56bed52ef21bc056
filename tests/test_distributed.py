"""skal.distributed: sharding, collectives (one process), and a real 2-process run (gloo on CPU)."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skal import ResNet18Classifier, WAALClassifier, bald
from skal import distributed, estimators
from skal.data import Pool
from skal.utils.topk import TopK

accelerate = pytest.importorskip("accelerate")

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- sharding
@pytest.mark.parametrize("mode", ["strided", "contiguous"])
@pytest.mark.parametrize("n_chunks, world", [(1, 2), (7, 2), (9, 3), (10, 4), (3, 8)])
def test_shards_cover_every_chunk_once(mode, n_chunks, world):
    shards = [list(distributed.shard_chunks(n_chunks, mode, rank_=r, world_size_=world))
              for r in range(world)]
    assert sorted(sum(shards, [])) == list(range(n_chunks))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced
    if mode == "contiguous":
        assert all(s == list(range(s[0], s[0] + len(s))) for s in shards if s)


def test_shard_mode_error():
    with pytest.raises(ValueError, match=r"The 'mode' parameter must be 'strided' or "
                                         r"'contiguous'\. Got 'random' instead\."):
        distributed.shard_chunks(4, "random")


def test_shutdown_destroys_the_process_group(tmp_path):
    import torch.distributed as dist

    distributed.shutdown()  # no group: a no-op
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        assert dist.is_initialized()
        distributed.shutdown()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_one_process_collectives_are_identities():
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.broadcast_ints([3, 2**63 + 5]) == [3, 2**63 + 5]
    assert distributed.broadcast_seeds(None, 4) == (None, 4)
    np.testing.assert_array_equal(distributed.broadcast_array(np.arange(3)), [0, 1, 2])
    full = distributed.gather_scores([0.5, 0.25], [2, 0], 3)
    np.testing.assert_array_equal(full, [0.25, np.nan, 0.5])
    top = TopK(2)
    top.push(np.array([1.0, 3.0, 2.0]), np.arange(3))
    np.testing.assert_array_equal(distributed.merge_topk(top)[0], [1, 2])


# --------------------------------------------------------------------------- two processes
def _run_two_processes(tmp_path, models, pool):
    with open(tmp_path / "models.pkl", "wb") as f:
        pickle.dump(models, f)
    np.save(tmp_path / "pool.npy", pool)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tests" / "distributed_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_two_processes_select_the_single_process_indices_and_train_in_step(tmp_path, digits):
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from distributed_worker import CHUNK, queries
    finally:
        sys.path.remove(str(ROOT / "tests"))
    X, y = digits
    resnet = ResNet18Classifier(width=4, max_epochs=2, random_state=0).fit(X[:100], y[:100])
    y_waal = y[:140].copy()
    y_waal[100:] = -1
    waal = WAALClassifier(max_epochs=1, batch_size=16, random_state=0).fit(X[:140], y_waal)
    models = {"resnet": resnet, "waal": waal}
    ranks = _run_two_processes(tmp_path, models, X[300:600])
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["group_destroyed"] for r in ranks] == [True, True]  # left before exiting

    # the strategies: each process scored only its chunks, and both return one process's result
    expected = queries(models, Pool(np.load(tmp_path / "pool.npy", mmap_mode="r"),
                                    chunk_size=CHUNK))
    for name, (idx, scores) in expected.items():
        for r in ranks:
            assert r[name][0] == idx.tolist(), name
            np.testing.assert_array_equal(r[name][1], scores, err_msg=name)
    # 300 rows in chunks of 37: chunks 0, 2, 4, 6, 8 (152 rows) and 1, 3, 5, 7 (148 rows)
    assert [r["rows_scored"] for r in ranks] == [152, 148]
    assert ranks[0]["random_none"] == ranks[1]["random_none"]  # rank 0's draw
    assert len(set(ranks[0]["random_none"])) == 10

    # training: each process took half of every epoch (96 rows, 16 per process per step) ...
    assert [r["resnet_batches_per_epoch"] for r in ranks] == [3, 3]  # 6 in one process
    assert [r["waal_batches_per_epoch"] for r in ranks] == [10, 10]  # ceil(300 / 32)
    # ... on different rows, yet the parameters (not broadcast after training, only kept in step
    # by the averaged gradients) are identical on both, as are the buffers and the next query
    w0, w1 = (np.load(tmp_path / f"weights{r}.npz") for r in (0, 1))
    assert w0.files == w1.files and any(k.startswith("critic.") for k in w0.files)
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
    assert ranks[0]["after_fit"] == ranks[1]["after_fit"]


# --------------------------------------------------------------------------- one process
@pytest.fixture(scope="module")
def accelerator():
    return accelerate.Accelerator(cpu=True)


def test_accelerated_classifier_in_one_process(accelerator, digits, tmp_path):
    X, y = digits
    clf = estimators.AcceleratedResNet18Classifier(
        accelerator=accelerator, width=4, max_epochs=1, random_state=0
    ).fit(X[:64], y[:64])
    assert len(clf.history[-1]["batches"]) == 1  # 64 rows, batch_size 64
    assert not isinstance(clf.module_, torch.nn.parallel.DistributedDataParallel)
    np.save(tmp_path / "pool.npy", X[100:300])
    pool = np.load(tmp_path / "pool.npy", mmap_mode="r")
    idx, scores = bald(clf, pool, n_instances=4, n_samples=3, random_state=0)
    assert len(np.unique(idx)) == 4 and np.all(np.diff(scores) <= 0)
    assert clf.predict_proba(pool).shape == (200, 10)
    assert clone(clf).get_params()["width"] == 4


def test_accelerated_mixed_precision_errors(accelerator, digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"scales fp16 losses itself: pass "
                                         r"accelerate\.Accelerator\(mixed_precision='fp16'\)"):
        estimators.AcceleratedResNet18Classifier(
            accelerator=accelerator, width=2, max_epochs=1, mixed_precision="fp16"
        ).fit(X[:32], y[:32])
    with pytest.raises(ValueError, match=r"The 'unwrap_after_train' parameter of "
                                         r"AcceleratedResNet18Classifier must be True"):
        estimators.AcceleratedResNet18Classifier(
            accelerator=accelerator, width=2, max_epochs=1, unwrap_after_train=False
        ).fit(X[:32], y[:32])
    # Accelerate's state is one per process, so a stand-in for an Accelerator(mixed_precision=bf16)
    bf16 = SimpleNamespace(mixed_precision="bf16", device_placement=True,
                           device=torch.device("cpu"), print=print)
    y_waal = y[:40].copy()
    y_waal[20:] = -1
    with pytest.raises(ValueError, match="does not use the accelerator's mixed precision"):
        estimators.AcceleratedWAALClassifier(accelerator=bf16, max_epochs=1).fit(X[:40], y_waal)
