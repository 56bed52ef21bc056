"""When a training loss says that training diverged (shared by the learner and the runner)."""

import math

__all__ = ["EXPLODED_LOSS_FACTOR", "diverged_epoch", "train_losses"]

#: A last-epoch training loss above this many times the chance-level cross-entropy
#: ``log(n_classes)`` means training exploded. Measured on 64 digits with a width-2 ResNet18,
#: 3 epochs: lr=1e3 ends at 8.2e6, lr=10 at 662, lr=1 at 5.3, lr=1e-3 at 2.5 (chance: 2.3).
EXPLODED_LOSS_FACTOR = 100


def train_losses(net):
    """The per-epoch ``train_loss`` of a fitted skorch net.

    Parameters
    ----------
    net : skorch net
        The net; one without a history (not fitted) has no losses.

    Returns
    -------
    losses : list of float or None
        One entry per epoch of ``net.history_``, None where an epoch recorded no
        ``train_loss``; empty when the net has no history.
    """
    history = getattr(net, "history_", None)
    if history is None:
        return []
    return [epoch.get("train_loss") for epoch in history]


def diverged_epoch(losses, n_classes):
    """The first ``(epoch, loss)`` showing divergence, or None.

    An epoch diverged if its loss is non-finite, or, for the last epoch, above
    :data:`EXPLODED_LOSS_FACTOR` times ``log(n_classes)``. Epochs without a loss are skipped.

    Parameters
    ----------
    losses : sequence of float or None
        The loss of each epoch, as :func:`train_losses` returns them.
    n_classes : int
        The number of classes (at least 2 is used), which sets the chance-level loss.

    Returns
    -------
    divergence : tuple (epoch, loss) or None
        The 1-based epoch and its loss as a float, or None if training did not diverge.
    """
    chance = math.log(max(int(n_classes), 2))
    for epoch, loss in enumerate(losses, start=1):
        if loss is None:
            continue
        if not math.isfinite(loss) or (epoch == len(losses)
                                       and loss > EXPLODED_LOSS_FACTOR * chance):
            return epoch, float(loss)
    return None
