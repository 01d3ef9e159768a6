"""What a downstream task defines, and the input pipeline the five tasks share (supplement 1.2).

A :class:`Task` turns a labelled face (``(image, labels)`` in the layout of
:func:`facelib.data.synth.render`, which the real readers also produce) into a network input and
targets (:meth:`Task.prepare`: face crop, then the recipe's augmentations), builds its head,
computes its loss, and evaluates predictions with :mod:`facelib.metrics`. The loop that trains
any task is :mod:`facelib.tasks.finetune`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor, nn

from facelib import recipes
from facelib.tasks import augment as A

__all__ = ["Task"]


class Task:
    """Base class of the five tasks: box crop + random geometry + colour jitter + blur.

    Subclasses set :attr:`name`, :meth:`targets`, :meth:`build_head`, :meth:`loss`,
    :meth:`predict` and :meth:`evaluate`; they override :meth:`geometry`, :meth:`blur` or
    :meth:`crop_matrix` where their recipe differs.

    Args:
        recipe: the task's recipe (``recipes.task(name, profile)``).
        common: ``recipes.finetune(profile)``.
        mean, std: normalisation of the backbone's pretraining ("the images were normalized
            in accordance with the training procedure of the pre-trained backbone", 1.2).
    """

    name = "task"

    def __init__(self, recipe: Any, common: recipes.Finetune, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> None:
        self.recipe = recipe
        self.common = common
        self.mean, self.std = tuple(mean), tuple(std)

    # --- input pipeline ------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        s = self.recipe.input_size
        return int(s[0] if isinstance(s, tuple) else s)

    def geometry(self) -> A.Geometry:
        """Random geometric augmentation ranges of the recipe."""
        r = self.recipe
        return A.Geometry(rotation_deg=getattr(r, "rotation_deg", 0.0),
                          scale_range=tuple(getattr(r, "scale_range", (1.0, 1.0))),
                          translation=getattr(r, "translation", 0.0),
                          hflip_p=getattr(r, "hflip_p", 0.0))

    def crop_matrix(self, labels: dict[str, Any]) -> np.ndarray:
        """Source -> input matrix before augmentation: the square face crop around ``box``."""
        return A.box_crop_matrix(labels["box"], self.input_size, self.common.box_scale)

    def photometric(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Colour jitter (if the recipe has it), then Gaussian blur (if it has ``blur_p``)."""
        if getattr(self.recipe, "color_jitter", False):
            image = A.color_jitter(image, rng, self.common.color_jitter)
        if getattr(self.recipe, "blur_p", 0.0):
            image = A.gaussian_blur(image, rng, self.recipe.blur_kernel_range, self.recipe.blur_p,
                                    scale=self.input_size / self.common.blur_reference_size)
        return image

    def prepare(self, image: np.ndarray, labels: dict[str, Any],
                rng: np.random.Generator | None) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """One training (``rng`` given) or evaluation (``rng=None``) sample.

        Returns:
            ``(x, targets, augmented)``: x (3, S, S) float32 normalised; targets (arrays, see
            :meth:`targets`); the augmented (S, S, 3) uint8 image (for figures).
        """
        m = self.crop_matrix(labels)
        flipped = False
        if rng is not None:
            rnd, flipped = A.random_matrix(rng, self.input_size, self.geometry())
            m = A.compose(rnd, m)
        img = A.warp(image, m, self.input_size)
        if rng is not None:
            img = self.photometric(img, rng)
        return A.to_tensor_array(img, self.mean, self.std), self.targets(labels, m, flipped), img

    def eval_targets(self, labels: dict[str, Any]) -> dict[str, np.ndarray]:
        """The targets of :meth:`prepare` without ``rng`` (the evaluation crop), without warping
        the image: for the mean-target head and the trivial baseline, which need no pixels."""
        return self.targets(labels, self.crop_matrix(labels), False)

    # --- to be defined by each task ------------------------------------------------------
    def targets(self, labels: dict[str, Any], m: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        """Targets of one sample, given the source -> input matrix ``m``."""
        raise NotImplementedError

    def build_head(self, channels: int, side: int) -> nn.Module:
        """The head for a (B, channels, side, side) feature map."""
        raise NotImplementedError

    def loss(self, model: nn.Module, out: Any, target: dict[str, Tensor]) -> Tensor:
        """Training loss of a batch (``model`` for heads whose loss has parameters)."""
        raise NotImplementedError

    def predict(self, out: Any) -> dict[str, np.ndarray]:
        """Predictions of a batch in label units, as NumPy arrays."""
        raise NotImplementedError

    def wants_train_targets(self) -> bool:
        """Whether :meth:`init_head` needs the training targets (the recipe's ``head_init``)."""
        return getattr(self.recipe, "head_init", "default") == "mean target"

    def init_head(self, head: nn.Module, train: dict[str, np.ndarray]) -> bool:
        """Start the head as the mean-target predictor, if the recipe's ``head_init`` says so.

        ``train`` holds the training targets (evaluation crops). Tasks whose head ends in one
        linear layer (AU, emotion, 3D) set its weights to zero and its bias to the mean target
        (log class frequencies for classes): training starts from the trivial baseline instead
        of random outputs it must first unlearn. Returns whether anything was done.
        """
        return False

    def mean_prediction(self, train: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """The trivial baseline: predict the training targets' mean (majority class) for ``n`` faces."""
        raise NotImplementedError(f"the {self.name} task has no mean baseline")

    def evaluate(self, pred: dict[str, np.ndarray],
                 target: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """(flat metrics for ``metrics.json``, arrays such as per-image errors and CED curves)."""
        raise NotImplementedError
