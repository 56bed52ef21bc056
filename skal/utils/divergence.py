"""When a training loss says that training diverged (shared by the learner and the runner)."""

import math

__all__ = ["EXPLODED_LOSS_FACTOR", "diverged_epoch", "train_losses"]

#: A last-epoch training loss above this many times the chance-level cross-entropy
#: ``log(n_classes)`` means training exploded. Measured on 64 digits with a width-2 ResNet18,
#: 3 epochs: lr=1e3 ends at 8.2e6, lr=10 at 662, lr=1 at 5.3, lr=1e-3 at 2.5 (chance: 2.3).
EXPLODED_LOSS_FACTOR = 100


def train_losses(net):
    """Per-epoch ``train_loss`` of a fitted skorch net (None where an epoch has none)."""
    history = getattr(net, "history_", None)
    if history is None:
        return []
    return [epoch.get("train_loss") for epoch in history]


def diverged_epoch(losses, n_classes):
    """The first ``(epoch, loss)`` showing divergence, or None.

    An epoch diverged if its loss is non-finite, or, for the last epoch, above
    :data:`EXPLODED_LOSS_FACTOR` times ``log(n_classes)``.
    """
    chance = math.log(max(int(n_classes), 2))
    for epoch, loss in enumerate(losses, start=1):
        if loss is None:
            continue
        if not math.isfinite(loss) or (epoch == len(losses)
                                       and loss > EXPLODED_LOSS_FACTOR * chance):
            return epoch, float(loss)
    return None
