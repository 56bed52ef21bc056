"""Plain ``torch.nn`` modules used by skal's estimators (no scikit-learn here)."""

from .head import EmbeddingHead
from .lenet import BGADLLeNet
from .resnet import PreActResNet18, ResNet18
from .vae_acgan import (
    AuxiliaryClassifier,
    Discriminator,
    Encoder,
    Generator,
    init_normal_,
    reparameterize,
)
from .waal import (
    LeNetFeatures,
    MLPFeatures,
    ResNet18Features,
    VGG16BNFeatures,
    WAALCritic,
    WAALHead,
    WAALNet,
    infer_out_features,
)

__all__ = [
    "AuxiliaryClassifier",
    "BGADLLeNet",
    "Discriminator",
    "EmbeddingHead",
    "Encoder",
    "Generator",
    "LeNetFeatures",
    "MLPFeatures",
    "PreActResNet18",
    "ResNet18",
    "ResNet18Features",
    "VGG16BNFeatures",
    "WAALCritic",
    "WAALHead",
    "WAALNet",
    "infer_out_features",
    "init_normal_",
    "reparameterize",
]
