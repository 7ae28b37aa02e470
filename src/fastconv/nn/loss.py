"""Loss modules: thin holders of the reduction and options of the functional losses."""
from fastconv import functional as F
from fastconv.nn.module import Module


class CrossEntropyLoss(Module):
    def __init__(self, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, input, target):
        return F.cross_entropy(input, target, ignore_index=self.ignore_index, reduction=self.reduction)


class MultiMarginLoss(Module):
    """Multiclass SVM hinge loss."""

    def __init__(self, p=1, margin=1.0, reduction="mean"):
        super().__init__()
        self.p, self.margin, self.reduction = p, margin, reduction

    def forward(self, input, target):
        return F.multi_margin_loss(input, target, self.p, self.margin, reduction=self.reduction)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class L1Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.l1_loss(input, target, self.reduction)
