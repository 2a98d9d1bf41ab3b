"""Per-class MMD between the fakes' and the real train images' shape, pose or coarse layout
(``--shape-mmd``, ``--pose-mmd``, ``--layout-mmd``): asks each class to cover the poses, places and
looks of its real images, which a class drawn in one pose misses. Works best with --class-groups
(several fakes per class)."""

from __future__ import annotations

import torch

from gan_studio.models.layers import fp32
from gan_studio.training.losses.base import StepContext, Term, TermResult, TermSetup
from gan_studio.training.losses.image_features import layout_features, pose_features, pose_moments
from gan_studio.training.losses.mmd import class_rows, real_feature_bank, squared_mmd


class ClassMMD(Term):
    """Mean over the batch's classes of the squared MMD between the fakes' ``features`` and all of
    the class's real ones (computed once, on first use)."""

    option = ""  # the TrainConfig weight that switches the term on

    def __init__(self, weight: float, setup: TermSetup):
        super().__init__(weight)
        self.setup = setup
        self.bank: list | None = None

    @staticmethod
    def features(images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def build(cls, config, setup: TermSetup) -> ClassMMD | None:
        weight = getattr(config, cls.option)
        return cls(weight, setup) if weight > 0 else None

    def mmd(self, fake: torch.Tensor, labels: list[int] | torch.Tensor) -> torch.Tensor:
        if self.bank is None:
            s = self.setup
            self.bank = real_feature_bank(self.features, s.images, s.labels, s.n_classes, s.device)
        features = self.features(fp32(fake))
        terms = [squared_mmd(rows, *self.bank[c]) for c, rows in class_rows(features, labels)]
        return torch.stack(terms).mean()

    def generator_loss(self, ctx: StepContext) -> TermResult:
        loss = self.mmd(ctx.fake, ctx.fake_classes)
        return loss, {self.stats[0]: loss}


class ShapeMMD(ClassMMD):
    """On coarse edge maps: where edges are, blind to colour."""

    name = option = "shape_mmd"
    stats = ("loss_shape_mmd",)
    features = staticmethod(pose_features)


class PoseMMD(ClassMMD):
    """On four numbers per image: the soft silhouette's principal axis (which way the part points,
    how elongated it is) and its centroid, which edge maps carry only weakly."""

    name = option = "pose_mmd"
    stats = ("loss_pose_mmd",)
    features = staticmethod(pose_moments)


class LayoutMMD(ClassMMD):
    """On each image reduced to 8 x 8 pixels: its brightness, the table's and the part's colours, the
    part's place and size, together. Asks each class's fakes to spread over these as its photos do,
    which a classifier still reads at that size when D does not enforce it."""

    name = option = "layout_mmd"
    stats = ("loss_layout_mmd",)
    features = staticmethod(layout_features)
