"""skal's BasicBlock is a drop-in for torchvision's: same names, order, seeded weights, outputs."""

import pytest
import torch

from skal.utils.validation import torch_rng
from skal.nets import resnet
from skal.nets.resnet import BasicBlock, ResNet18

tv_resnet = pytest.importorskip("torchvision.models.resnet")


class TorchvisionBlockResNet18(ResNet18):
    """ResNet18 as it was built before skal had its own block."""

    def _block(self, in_planes, planes, stride):
        return tv_resnet.BasicBlock(
            in_planes, planes, stride, downsample=resnet._shortcut(in_planes, planes, stride)
        )


def build(cls, seed, **kw):
    with torch_rng(seed):
        return cls(**kw)


@pytest.mark.parametrize("kw", [
    dict(in_channels=1, n_classes=10, width=8),
    dict(in_channels=3, n_classes=7, width=16, dropout=0.2),
])
def test_same_state_dict_as_torchvision_block(kw):
    ours = build(ResNet18, 0, **kw)
    theirs = build(TorchvisionBlockResNet18, 0, **kw)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)  # same names, same order
    assert any(".downsample." in k for k in ours_sd)  # the projection shortcuts are compared too
    for key in ours_sd:
        assert ours_sd[key].dtype == theirs_sd[key].dtype, key
        assert torch.equal(ours_sd[key], theirs_sd[key]), key
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    # Another seed gives other weights: the comparison above is not trivially true.
    other = build(ResNet18, 1, **kw).state_dict()
    assert not torch.equal(other["layer2.0.conv1.weight"], ours_sd["layer2.0.conv1.weight"])


@pytest.mark.parametrize("train", [True, False])
def test_same_outputs_and_gradients_as_torchvision_block(train):
    ours = build(ResNet18, 3, in_channels=3, n_classes=5, width=8, dropout=0.0)
    theirs = build(TorchvisionBlockResNet18, 3, in_channels=3, n_classes=5, width=8, dropout=0.0)
    ours.train(train)
    theirs.train(train)
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    out_ours, out_theirs = ours(x), theirs(x)
    torch.testing.assert_close(out_ours, out_theirs, rtol=0, atol=0)
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0, msg=name)
    # Running statistics move identically in train mode.
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs.state_dict()[key]), key


def test_state_dicts_load_both_ways():
    ours = build(ResNet18, 5, width=8)
    theirs = build(TorchvisionBlockResNet18, 6, width=8)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(build(ResNet18, 7, width=8).state_dict(), strict=True)


def test_block_interface():
    block = BasicBlock(4, 8, stride=2, downsample=resnet._shortcut(4, 8, 2))
    assert block(torch.zeros(2, 4, 6, 6)).shape == (2, 8, 3, 3)
    assert BasicBlock.expansion == 1 and block.stride == 2
    assert BasicBlock(8, 8)(torch.zeros(1, 8, 5, 5)).shape == (1, 8, 5, 5)
    assert not isinstance(block, tv_resnet.BasicBlock)
