"""Tests of the WAAL networks in skal.nets.waal: shapes, feature sizes, the critic's range."""

import pytest
import torch
from torch import nn

from skal.nets import (
    LeNetFeatures,
    VGG16BNFeatures,
    WAALCritic,
    WAALHead,
    WAALNet,
    infer_out_features,
)


@pytest.fixture(scope="module")
def vgg():
    return VGG16BNFeatures()


def test_lenet_features_28x28_gray():
    features = LeNetFeatures()
    assert features.out_features == 320
    z = features(torch.zeros(3, 1, 28, 28))
    assert z.shape == (3, 320)
    assert (z >= 0).all()  # ends with ReLU


@pytest.mark.parametrize("image_shape", [(3, 32, 32), (1, 16, 16), (2, 28, 40)])
def test_lenet_out_features_matches_forward(image_shape):
    features = LeNetFeatures(in_channels=image_shape[0], image_shape=image_shape).eval()
    z = features(torch.zeros(2, *image_shape))
    assert z.shape == (2, features.out_features)
    assert infer_out_features(nn.Sequential(features), image_shape) == features.out_features


def test_lenet_rejects_bad_image_shape():
    with pytest.raises(ValueError, match="must start with in_channels=1"):
        LeNetFeatures(in_channels=1, image_shape=(3, 28, 28))
    with pytest.raises(ValueError, match=r"must be a tuple \(C, H, W\) with H and W each an int in the "
                                         r"range \[16, inf\)\. Got \(1, 15, 28\)"):
        LeNetFeatures(image_shape=(1, 15, 28))
    with pytest.raises(ValueError, match=r"must be a tuple \(C, H, W\), each an int in the range "
                                         r"\[1, inf\)"):
        LeNetFeatures(image_shape=(28, 28))


def test_vgg16bn_features_32x32_color(vgg):
    assert vgg.out_features == 512
    vgg.eval()
    assert vgg(torch.zeros(2, 3, 32, 32)).shape == (2, 512)
    n_convs = sum(isinstance(m, nn.Conv2d) for m in vgg.modules())
    n_norms = sum(isinstance(m, nn.BatchNorm2d) for m in vgg.modules())
    assert n_convs == n_norms == 13


def test_vgg16bn_other_shapes():
    assert VGG16BNFeatures(in_channels=1, image_shape=(1, 64, 32)).out_features == 1024
    with pytest.raises(ValueError, match=r"with H and W each an int in the range \[32, inf\)"):
        VGG16BNFeatures(image_shape=(3, 28, 28))


def test_head_returns_logits():
    head = WAALHead(320, n_classes=10)
    assert head.in_features == 320
    assert head(torch.randn(4, 320)).shape == (4, 10)
    assert sum(isinstance(m, nn.Dropout) for m in head.modules()) == 1


def test_critic_output_in_unit_interval_with_shape_n():
    critic = WAALCritic(320)
    for n in (1, 5):
        g = critic(10 * torch.randn(n, 320))
        assert g.shape == (n,)
        assert ((g > 0) & (g < 1)).all()


def test_critic_is_deterministic_in_eval_mode():
    critic = WAALCritic(8, dropout=0.5).eval()
    z = torch.randn(4, 8)
    assert torch.equal(critic(z), critic(z))


def test_waal_net_with_lenet():
    features = LeNetFeatures()
    net = WAALNet(features, WAALHead(features.out_features, n_classes=10)).eval()
    x = torch.randn(2, 1, 28, 28)
    assert net(x).shape == (2, 10)
    torch.testing.assert_close(net(x), net.head(net.features(x)))


class TinyFeatures(nn.Module):
    """A custom extractor without ``out_features``: flatten then a linear layer to 7 features."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 7)

    def forward(self, x):
        return self.linear(x.flatten(1))  # (n, 16) -> (n, 7)


def test_waal_net_with_custom_feature_extractor():
    features = TinyFeatures()
    in_features = infer_out_features(features, image_shape=(1, 4, 4))
    assert in_features == 7
    assert features.training  # measuring it restored the mode
    net = WAALNet(features, WAALHead(in_features, n_classes=3))
    assert net(torch.randn(5, 1, 4, 4)).shape == (5, 3)
    assert WAALCritic(in_features)(net.features(torch.randn(5, 1, 4, 4))).shape == (5,)


def test_waal_net_rejects_mismatched_head():
    message = "features.out_features is 320 but head.in_features is 512"
    with pytest.raises(ValueError, match=message):
        WAALNet(LeNetFeatures(), WAALHead(512, n_classes=10))


def test_infer_out_features_needs_image_shape():
    assert infer_out_features(LeNetFeatures()) == 320
    with pytest.raises(ValueError, match="has no 'out_features' attribute. Pass image_shape"):
        infer_out_features(TinyFeatures())
