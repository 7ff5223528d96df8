"""The four architectures of the founding report, and the opt-in ViTTiny (:mod:`.vit`).

Parameter counts (checked by tests/test_zoo.py against the report, 3% tolerance):
SimpleCNN_6x2 5.94 M, EnhancedLeNet5 1.11 M, EfficientNetB0Custom 4.06 M, ResNet50Custom 23.6 M.
All four are plain ``nn.Module`` graphs without data-dependent control flow, so torch FX
(used by static/QAT quantization) and Torch-Pruning's dependency graph can trace them.
"""
from __future__ import annotations

import torch.nn as nn
from torchvision.models import efficientnet_b0, resnet50

from .registry import register_model
from .vit import vit_tiny


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


@register_model("SimpleCNN_6x2", input_shape=(1, 28, 28), full_dataset="mnist",
                description="six 3x3 conv layers in three blocks of two, large fully-connected head")
def simple_cnn_6x2() -> nn.Module:
    layers: list[nn.Module] = []
    c_in = 1
    for width in (32, 64, 128):  # three blocks of two convs, each block halves the resolution
        layers += _conv_bn_relu(c_in, width) + _conv_bn_relu(width, width)
        layers.append(nn.MaxPool2d(2))
        c_in = width
    return nn.Sequential(
        nn.Sequential(*layers),  # 28 -> 14 -> 7 -> 3
        nn.Flatten(),
        nn.Linear(128 * 3 * 3, 2560), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(2560, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(1024, 10),
    )


@register_model("EnhancedLeNet5", input_shape=(1, 28, 28), full_dataset="mnist",
                description="LeNet-5 widened (32/64 5x5 filters, 640/64 hidden units) with batch norm")
def enhanced_lenet5() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),  # 28 -> 14
        nn.Conv2d(32, 64, 5), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),  # 10 -> 5
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 640), nn.BatchNorm1d(640), nn.ReLU(inplace=True), nn.Dropout(0.3),
        nn.Linear(640, 64), nn.ReLU(inplace=True),
        nn.Linear(64, 10),
    )


@register_model("EfficientNetB0Custom", input_shape=(3, 32, 32), full_dataset="cifar10",
                description="torchvision efficientnet_b0 with a 10-class head")
def efficientnet_b0_custom() -> nn.Module:
    model = efficientnet_b0(weights=None, num_classes=10)
    # torchvision initialises this head uniformly in +-1/sqrt(out_features), i.e. +-0.32 for
    # ten classes: initial logits have a standard deviation near 4.5 and from-scratch training
    # on small data diverges. A small normal init starts at the uniform prediction instead.
    head = model.classifier[-1]
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    return model


@register_model("ResNet50Custom", input_shape=(3, 32, 32), full_dataset="cifar10",
                description="torchvision resnet50 with a 10-class head")
def resnet50_custom() -> nn.Module:
    # zero-initialised last BN of each residual branch: each block starts as identity, which
    # keeps from-scratch training on small data stable
    return resnet50(weights=None, num_classes=10, zero_init_residual=True)


# ViTTiny is opt-in: selected by name (--zoo-models=ViTTiny), never part of the default matrix
register_model("ViTTiny", input_shape=(1, 28, 28), full_dataset="mnist", default=False,
               description="small vision transformer: 4x4 patches, 4 pre-norm blocks of 4 heads, dim 64")(vit_tiny)
