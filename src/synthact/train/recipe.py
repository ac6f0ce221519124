"""TSN's training recipe in one place (Wang et al., 2016, and the authors' tsn-pytorch): both
engines, ours and mmaction2's, read these values; nothing else spells them.
"""
from __future__ import annotations

BACKBONES = ("resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_lite0")  # see models.TSN
MODALITIES = ("rgb", "flow")
# evaluation protocols -> (the dataset mode, snippets): TSN's 25 snippets x 10 crops, or one centre
# crop per segment
PROTOCOLS = {"tsn": ("test", 25), "fast": ("val", None)}
DEFAULT_LR = {"rgb": 0.001, "flow": 0.005}    # SGD learning rate per modality
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
LR_DROPS = (0.5, 0.75)                        # step schedule: x LR_GAMMA at these fractions of the epochs
LR_GAMMA = 0.1
CLIP_GRAD = {"rgb": 40.0, "flow": 20.0}       # gradient-norm clipping per modality
DROPOUT = {"rgb": 0.8, "flow": 0.7}           # before the classifier
# Partial BN (every BatchNorm but the first frozen at its ImageNet statistics) on pretrained
# backbones, as TSN did, for RGB only. Flow frames are not ImageNet pictures: at the small frame
# sizes a CPU trains on, their motion spans a few grey levels of the +-20 px encoding, and RGB
# statistics left ~90 % of the features at zero from the first step; with synthetic clips in the
# batch the rest died within two epochs (loss ln C, every clip one class). Flow's BatchNorms learn.
PARTIAL_BN = {"rgb": True, "flow": False}
NEW_LENGTH = {"rgb": 1, "flow": 5}            # frames (flow: x/y pairs) stacked per snippet
CROP_SCALES = (1.0, 0.875, 0.75, 0.66)        # multi-scale crop sides, fractions of the short side
FLIP_RATIO = 0.5                              # horizontal flip; a flipped flow-x becomes 255 - x
SEED_STRIDE = 100003                          # seed * SEED_STRIDE + epoch: one random stream per epoch


def lr_milestones(epochs: int) -> list[int]:
    """Epochs after which the step schedule multiplies the learning rate by :data:`LR_GAMMA`."""
    return sorted({max(1, int(epochs * f)) for f in LR_DROPS})


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's random draws (shuffle, augmentation, dropout) of a run."""
    return seed * SEED_STRIDE + epoch
