"""SimCLR's pieces for :class:`skal.ContrastiveEncoder`: the network, its construction and the step.

:class:`SimCLRNetworksMixin` overrides skorch's ``initialize_module`` and ``initialize_criterion``
(skorch's "Initialization and custom modules" pattern): a backbone built from the image shape
(skal's ResNet18 trunk, or any module) under lightly's SimCLR projection head
(:class:`SimCLRNet`), and lightly's NT-Xent loss. :class:`ContrastiveTrainingMixin` overrides the
training hooks: two augmented views of every batch through the network as one batch, the NT-Xent
loss of their projections, and a generator seeded per epoch so that resumed training repeats the
interrupted run. lightly is imported on first use (:func:`lightly_parts`).
"""

import copy
import zlib
from typing import Any

import torch
from torch import nn

from ..nets.resnet import PreActResNet18, ResNet18
from ..utils.modes import EvalMode
from ..utils.seeds import wrap_seed
from ..utils.validation import accepted

__all__ = ["BACKBONES", "ContrastiveTrainingMixin", "SimCLRNet", "SimCLRNetworksMixin",
           "epoch_seed", "lightly_parts"]

#: The backbones named by a string ``backbone``: ResNet18 trunks without their head.
BACKBONES = {"resnet18": ResNet18, "preact_resnet18": PreActResNet18}

LIGHTLY_HINT = (
    "ContrastiveEncoder takes its NT-Xent loss and SimCLR projection head from the 'lightly' "
    "package, which is not installed. Install it without its training framework (those two "
    "pieces need only torch): pip install --no-deps lightly==1.6.0"
)


def lightly_parts():
    """lightly's ``(NTXentLoss, SimCLRProjectionHead)``, or an ImportError saying how to install."""
    try:
        from lightly.loss import NTXentLoss
        from lightly.models.modules.heads import SimCLRProjectionHead
    except ImportError as exc:
        raise ImportError(LIGHTLY_HINT) from exc
    return NTXentLoss, SimCLRProjectionHead

class SimCLRNet(nn.Module):
    """``backbone`` (images -> features ``h``) and ``projection_head`` (``h`` -> ``z``).

    ``forward`` returns the features (what ``transform`` gives); the training step projects them.
    """

    def __init__(self, backbone, projection_head, use_features=False):
        super().__init__()
        self.backbone = backbone
        self.projection_head = projection_head
        self.use_features = use_features

    def forward(self, x, stages=False):
        if stages:  # transform with feature_stages="all"
            return self.backbone.stage_features(x)  # (n, 15 * width)
        if self.use_features:
            return self.backbone.features(x)  # (n, d)
        return self.backbone(x)  # (n, d)

    def project(self, h):
        return self.projection_head(h)  # (n, projection_dim)

def epoch_seed(seed, epoch):
    """The seed of epoch ``epoch`` (1-based) of a fit seeded with ``seed``."""
    return wrap_seed(zlib.crc32(f"{seed}:{epoch}".encode()))


class SimCLRNetworksMixin:
    """skorch's ``initialize_module`` / ``initialize_criterion`` for a SimCLR encoder.

    The host class provides the ``backbone``, ``width``, ``hidden_dim``, ``projection_dim``,
    ``temperature``, ``criterion`` and augmentation parameters (``augment``, ``crop_scale``,
    ``flip``, ``jitter``, ``grayscale``, ``blur``), ``input_shape_`` and ``_compute_device()``.
    """

    def _build_backbone(self):
        channels = self.input_shape_[0]
        spec = self.backbone
        if isinstance(spec, str):
            net = BACKBONES[spec](in_channels=channels, n_classes=1, width=self.width,
                                   dropout=0.0, stem_stride=getattr(self, "stem_stride", 1))
            net.dropout, net.linear = nn.Identity(), nn.Identity()  # the trunk: features only
            return net, False
        if isinstance(spec, nn.Module):
            net = copy.deepcopy(spec)  # every fit starts from the given weights
        else:
            derived = {"in_channels": channels, "width": self.width,
                       "image_shape": self.input_shape_}
            net = spec(**accepted(spec, derived))
        if not isinstance(net, nn.Module):
            raise TypeError(
                f"The 'backbone' parameter of {type(self).__name__} must build a torch.nn.Module; "
                f"{spec!r} built a {type(net).__name__}."
            )
        return net, callable(getattr(net, "features", None))

    def _feature_size(self, module, stages=False):
        """``d``: one forward pass on one zero image (eval mode, no randomness used)."""
        x = torch.zeros((1,) + tuple(self.input_shape_), device=self._compute_device())
        try:
            with EvalMode(module), torch.no_grad(), torch.random.fork_rng(devices=[]):
                h = module(x, stages=stages)
        except RuntimeError as exc:
            raise ValueError(
                f"The backbone of {type(self).__name__} ({type(module.backbone).__name__}) cannot "
                f"take images of shape {tuple(self.input_shape_)}: a forward pass failed with: "
                f"{exc}"
            ) from None
        if not isinstance(h, torch.Tensor) or h.ndim != 2:
            shape = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
            raise ValueError(
                f"The backbone of {type(self).__name__} must return features of shape (n, d); "
                f"for one image of shape {tuple(self.input_shape_)} it returned {shape}."
            )
        return int(h.shape[1])

    def _check_feature_stages(self, backbone):
        """Refuse ``feature_stages="all"`` for a backbone (a name, class or module) that has no
        ``stage_features`` method; the named backbones have one."""
        if self.feature_stages == "all" and not (
                isinstance(backbone, str) or callable(getattr(backbone, "stage_features", None))):
            given = (f"a {type(backbone).__name__} module" if isinstance(backbone, nn.Module)
                     else repr(backbone))
            raise ValueError(
                f"The 'feature_stages' parameter of {type(self).__name__} is 'all', which needs "
                "a backbone with a stage_features method (the named 'resnet18' or "
                f"'preact_resnet18'); got {given}. Use feature_stages='last'."
            )

    def _embedding_dim(self, net, last_dim=None):
        """What ``transform`` returns per image: the last features, or all stages' pooled."""
        if self.feature_stages != "all":
            return last_dim if last_dim is not None else self._feature_size(net)
        self._check_feature_stages(net.backbone)
        return self._feature_size(net, stages=True)

    def initialize_module(self) -> "SimCLRNetworksMixin":
        """Build the backbone from the image shape, and lightly's SimCLR projection head on it.

        Returns
        -------
        self : ContrastiveEncoder
            This estimator, with ``module_``, ``embedding_dim_`` and ``augment_`` set.
        """
        if not hasattr(self, "input_shape_"):
            raise ValueError(
                f"{type(self).__name__} builds its network from the images. To initialise it "
                "before fit (e.g. to load a checkpoint), pass image_shape=(C, H, W)."
            )
        if len(self.input_shape_) != 3:
            raise ValueError(
                f"{type(self).__name__} takes images (n, C, H, W); got rows of shape "
                f"{tuple(self.input_shape_)}. Pass image_shape=(C, H, W) for flat rows."
            )
        _, head_cls = lightly_parts()
        backbone, use_features = self._build_backbone()
        net = SimCLRNet(backbone, nn.Identity(), use_features).to(self._compute_device())
        dim = self._feature_size(net)
        net.projection_head = head_cls(input_dim=dim, hidden_dim=self.hidden_dim or dim,
                                       output_dim=self.projection_dim)
        self.module_ = net
        self.embedding_dim_ = self._embedding_dim(net, dim)
        self.augment_ = self._build_augment()
        return self

    def _build_augment(self):
        if self.augment is not None:
            return self.augment
        from ._ssl_augment import (
            simclr_augment,  # imports torchvision: only when training
        )

        return simclr_augment(self.input_shape_[0], crop_scale=tuple(self.crop_scale),
                              flip=self.flip, jitter=self.jitter, grayscale=self.grayscale,
                              blur=self.blur)

    def initialize_criterion(self) -> "SimCLRNetworksMixin":
        """Build the NT-Xent loss: lightly's ``NTXentLoss(temperature)``, or ``criterion`` if set.

        Returns
        -------
        self : ContrastiveEncoder
            This estimator, with ``criterion_`` set.
        """
        if self.criterion is not None:
            return super().initialize_criterion()
        loss_cls, _ = lightly_parts()
        kwargs = {"temperature": self.temperature, **self.get_params_for("criterion")}
        self.criterion_ = loss_cls(**kwargs)
        return self


class ContrastiveTrainingMixin:
    """skorch's training hooks for SimCLR: two views per image and the NT-Xent loss.

    The host class provides ``module_`` (a :class:`SimCLRNet`), ``criterion_``, ``augment_``
    and ``_compute_device()``; ``fit`` stores its seed as ``_seed`` and sets ``_fitting``.
    """

    def _views(self, x):
        """Two augmented views of a batch, through the network as one batch: ``(z0, z1)``."""
        views = torch.cat([self._augmented(x), self._augmented(x)])  # (2B, C, H, W)
        z = self.module_.project(self.infer(views))  # (2B, projection_dim)
        return z.chunk(2)  # two (B, projection_dim)

    def _augmented(self, x):
        out = self.augment_(x)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"The 'augment' parameter of {type(self).__name__} must return a batch of the "
                f"shape it was given, {tuple(x.shape)}; it returned {shape}."
            )
        return out

    def _batch(self, batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.as_tensor(x, device=self._compute_device())  # (B, C, H, W)

    def get_loss(self, y_pred: Any, y_true: Any = None, X: Any = None,
                 training: bool = False) -> torch.Tensor:
        """NT-Xent loss of the projections of the two views.

        Parameters
        ----------
        y_pred : tuple of two tensors (B, projection_dim)
            Projections of the first and the second view of each image.
        y_true : None
            Ignored (no labels).
        X : tensor, default=None
            The batch (unused).
        training : bool, default=False
            Whether this is a training step.

        Returns
        -------
        loss : torch.Tensor
            A scalar.
        """
        z0, z1 = y_pred
        return self.criterion_(z0, z1)

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Forward two random views of the batch, the NT-Xent loss, backward.

        Parameters
        ----------
        batch : tensor (B, C, H, W)
            A batch of images.
        **fit_params
            Unused.

        Returns
        -------
        step : dict
            ``loss`` and ``y_pred`` (the first view's projections), as skorch's step.
        """
        self._set_training(True)
        x = self._batch(batch)
        z0, z1 = self._views(x)
        loss = self.get_loss((z0, z1), None, X=x, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": z0}

    def validation_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """The NT-Xent loss of two random views of a held-out batch (no gradient).

        Parameters
        ----------
        batch : tensor (B, C, H, W)
            A batch of held-out images.
        **fit_params
            Unused.

        Returns
        -------
        step : dict
            ``loss`` and ``y_pred``, as skorch's step.
        """
        self._set_training(False)
        x = self._batch(batch)
        with torch.no_grad():
            z0, z1 = self._views(x)
            loss = self.get_loss((z0, z1), None, X=x, training=False)
        return {"loss": loss, "y_pred": z0}

    def on_epoch_begin(self, net: Any, dataset_train: Any = None, dataset_valid: Any = None,
                       **kwargs: Any) -> None:
        """Start an epoch: skorch's history row, then torch's generator seeded for this epoch.

        Each epoch's shuffling and augmentation depend only on ``random_state`` and the epoch's
        number, so training resumed from a checkpoint (weights, optimizer, history) runs the
        epochs the interrupted run would have run.

        Parameters
        ----------
        net : ContrastiveEncoder
            This estimator (skorch's callback protocol).
        dataset_train : Dataset or None
            The training dataset of the epoch (skorch's argument).
        dataset_valid : Dataset or None
            The validation dataset of the epoch (skorch's argument).
        **kwargs
            Other arguments of skorch's ``on_epoch_begin``.
        """
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                               **kwargs)
        seed = vars(self).get("_seed")
        if seed is not None and vars(self).get("_fitting"):
            torch.manual_seed(epoch_seed(seed, len(self.history)))
