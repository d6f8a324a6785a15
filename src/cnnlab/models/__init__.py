"""The model zoo: readable reference implementations of the landmark CNNs.

One file per family (``lenet``, ``alexnet``, ``vgg``, ``googlenet``,
``resnet`` with SE as an option, ``xception``, ``efficientnet``, ``mlp``),
sharing blocks from :mod:`cnnlab.layers`. Every model takes ``num_classes``
and ``in_channels``, has ``forward_features`` / ``forward_head`` and a
``min_input_size``, and has exactly the parameters of its reference
implementation (``ZOO[name].reference``).
"""

from cnnlab.models.alexnet import AlexNet, alexnet, alexnet_paper
from cnnlab.models.base import ZooModel
from cnnlab.models.efficientnet import (
                                        EfficientNet,
                                        efficientnet_b0,
                                        efficientnet_b1,
                                        efficientnet_b2,
                                        efficientnet_b3,
                                        efficientnet_b4,
                                        efficientnet_b5,
                                        efficientnet_b6,
                                        efficientnet_b7,
)
from cnnlab.models.googlenet import GoogLeNet, googlenet
from cnnlab.models.lenet import LeNet5, lenet5, lenet5_relu
from cnnlab.models.mlp import MLP, mlp
from cnnlab.models.registry import ZOO, ZooEntry, analyzable_names, create_model, get_entry, model_names
from cnnlab.models.resnet import (
                                        ResNet,
                                        resnet18,
                                        resnet34,
                                        resnet50,
                                        resnet101,
                                        resnet152,
                                        seresnet18,
                                        seresnet34,
                                        seresnet50,
                                        seresnet101,
                                        seresnet152,
)
from cnnlab.models.vgg import VGG, vgg11, vgg11_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from cnnlab.models.xception import Xception, xception

__all__ = [
                                        "MLP",
                                        "VGG",
                                        "ZOO",
                                        "AlexNet",
                                        "EfficientNet",
                                        "GoogLeNet",
                                        "LeNet5",
                                        "ResNet",
                                        "Xception",
                                        "ZooEntry",
                                        "ZooModel",
                                        "alexnet",
                                        "alexnet_paper",
                                        "create_model",
                                        "efficientnet_b0",
                                        "efficientnet_b1",
                                        "efficientnet_b2",
                                        "efficientnet_b3",
                                        "efficientnet_b4",
                                        "efficientnet_b5",
                                        "efficientnet_b6",
                                        "efficientnet_b7",
                                        "get_entry",
                                        "googlenet",
                                        "lenet5",
                                        "lenet5_relu",
                                        "mlp",
                                        "model_names", "analyzable_names",
                                        "resnet18",
                                        "resnet34",
                                        "resnet50",
                                        "resnet101",
                                        "resnet152",
                                        "seresnet18",
                                        "seresnet34",
                                        "seresnet50",
                                        "seresnet101",
                                        "seresnet152",
                                        "vgg11",
                                        "vgg11_bn",
                                        "vgg16",
                                        "vgg16_bn",
                                        "vgg19",
                                        "vgg19_bn",
                                        "xception",
]
