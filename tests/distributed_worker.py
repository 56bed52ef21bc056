"""One process of the 2-process test in test_distributed.py (run under torchrun, gloo on CPU).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_worker.py DIR

DIR holds ``models.pkl`` (fitted nets) and ``pool.npy`` (the pool, opened as a memmap); every
process writes ``weights<r>.npz`` (the parameters and buffers of the nets it trained
data-parallel) and, after leaving the process group (``skal.distributed.shutdown``), ``rank<r>.json``
(the strategies' indices and scores, rows it scored, history).
"""

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

torch.set_num_threads(1)

from accelerate import Accelerator  # noqa: E402

from skal import (  # noqa: E402
    bald,
    entropy_sampling,
    margin_sampling,
    random_sampling,
    uncertainty_sampling,
    waal_uncertainty_diversity,
)
from skal import distributed  # noqa: E402
from skal.data import Pool  # noqa: E402
from skal.datasets import load_digits_images  # noqa: E402
from skal.estimators import AcceleratedResNet18Classifier, AcceleratedWAALClassifier

CHUNK = 37


class Counting:
    """Passes predict_proba on, counting the pool rows this process scored."""

    def __init__(self, est):
        self.est, self.rows = est, 0

    def predict_proba(self, X):
        self.rows += len(X)
        return self.est.predict_proba(X)


def queries(models, pool):
    """The strategies' results; test_distributed.py runs the same in one process."""
    resnet, waal = models["resnet"], models["waal"]
    return {
        "bald": bald(resnet, pool, 10, n_samples=5, random_state=0),
        "bald_none": bald(resnet, pool, 10, n_samples=5),
        "bald_subsample": bald(resnet, pool, 10, n_samples=5, subsample=150, random_state=1),
        "uncertainty": uncertainty_sampling(resnet, pool, 10),
        "entropy": entropy_sampling(resnet, pool, 10, random_state=3),
        "margin": margin_sampling(resnet, pool, 10, random_state=4),
        "waal": waal_uncertainty_diversity(waal, pool, 10, random_state=0),
    }


def main(out):
    out = Path(out)
    accelerator = Accelerator(cpu=True)  # joins the torchrun process group (gloo)
    r = distributed.rank()
    with open(out / "models.pkl", "rb") as f:
        models = pickle.load(f)
    memmap = np.load(out / "pool.npy", mmap_mode="r")
    pool = Pool(memmap, chunk_size=CHUNK)
    result = {"rank": r, "world_size": distributed.world_size()}
    result.update({k: [v[0].tolist(), np.asarray(v[1], dtype=float).tolist()]
                   for k, v in queries(models, pool).items()})
    counting = Counting(models["resnet"])
    uncertainty_sampling(counting, pool, 5)
    result["rows_scored"] = counting.rows
    result["random_none"] = random_sampling(None, pool, 10)[0].tolist()  # rank 0's draw

    # data-parallel training, random_state=None: the seed is agreed on too
    X, y = load_digits_images()
    clf = AcceleratedResNet18Classifier(
        accelerator=accelerator, width=4, max_epochs=2, batch_size=16, random_state=None
    ).fit(X[:96], y[:96])
    result["resnet_batches_per_epoch"] = len(clf.history[-1]["batches"])
    waal = AcceleratedWAALClassifier(
        accelerator=accelerator, max_epochs=1, batch_size=16, lr_milestones=None,
        random_state=None,
    ).fit(X[:40], y[:40], X_unlabeled=memmap)  # the unlabelled pool stays a memmap
    result["waal_batches_per_epoch"] = len(waal.history[-1]["batches"])
    weights = {f"resnet.{k}": v.numpy() for k, v in clf.module_.state_dict().items()}
    weights.update({f"waal.{k}": v.numpy() for k, v in waal.module_.state_dict().items()})
    weights.update({f"critic.{k}": v.numpy() for k, v in waal.critic_.state_dict().items()})
    np.savez(out / f"weights{r}.npz", **weights)
    result["after_fit"] = uncertainty_sampling(clf, pool, 5)[0].tolist()
    # leave the gloo group before exiting: torn down at interpreter exit instead, a process
    # aborted about once in 30 runs ("terminate called without an active exception")
    distributed.shutdown()
    result["group_destroyed"] = not dist.is_initialized()
    with open(out / f"rank{r}.json", "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
    # Even after destroy_process_group, gloo's C++ threads can outlive the interpreter's
    # finalization and abort the process (SIGABRT, about 1 run in 50 measured): the results are
    # written, so leave without finalizing (torch's issue, not skal's; see docs/scaling.md).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
