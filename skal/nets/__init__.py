"""Plain ``torch.nn`` modules used by skal's estimators (no scikit-learn here)."""

from skal.nets.head import EmbeddingHead
from skal.nets.lenet import BGADLLeNet
from skal.nets.resnet import PreActResNet18, ResNet18

from skal.nets.vae_acgan import (
    AuxiliaryClassifier,
    Discriminator,
    Encoder,
    Generator,
    init_normal_,
    reparameterize,
)
from skal.nets.waal import (
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
