"""Pretraining data: any dataset of RGB uint8 images, multi-cropped, in a replayable order.

:class:`MultiCropDataset` wraps a torch ``Dataset`` whose items are an image or a tuple whose
first element is the image (``SynthFaces``, ``storage.ShardDataset``, ...). :class:`EpochSampler`
draws the epoch's permutation from (seed, epoch) and hands each process its slice of every
global batch. Each sample's augmentations come from a generator seeded with
(seed, epoch, index), so an epoch replays identically after a resume, whatever the number of
loader workers. Items that cannot be read are recorded and counted
(:class:`facelib.data.unreadable.UnreadableItems`: ``bad_items.jsonl``, naming the shard and
item) and replaced by the next readable one; the training loop stops the run once their number
is over the recipe's ``max_unreadable_items`` (default 0: any unreadable image).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterator, Sized

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from ..data.unreadable import READ_ERRORS, UnreadableItems
from .transforms import MultiCrop, as_rgb_uint8

__all__ = ["MultiCropDataset", "EpochSampler", "FaceCrop", "synthetic_faces", "SYNTH_RENDER_SCALE"]


#: Synthetic faces are rendered this many times larger than the pretraining images, then cut to
#: the paper's crop geometry (:class:`FaceCrop`): the renderer's face box spans about 0.4 of its
#: side, and the crop (box * 256 / 190) about 0.57, so 1.6x gives crops of about the image size.
SYNTH_RENDER_SCALE = 1.6


class FaceCrop:
    """``(image, labels) -> (crop, labels)``: the paper's pretraining crop of a labelled face.

    Supplement 1.1 pretrains on 256 x 256 crops in which the detected face spans 190 px
    (``recipes.crop()``); :func:`facelib.faces.crop.crop_face` cuts that geometry around the
    face ``box`` of the labels and resizes it to ``size``. Landmarks are not moved (the
    pretraining uses the image only).
    """

    def __init__(self, size: int, face_size: int, output_size: int, rule: str = "max") -> None:
        self.size = int(size)
        self.face_size = face_size
        self.output_size = output_size
        self.rule = rule

    def __call__(self, image: np.ndarray, labels: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        from ..faces.crop import crop_face
        crop, _ = crop_face(image, labels["box"], face_size=self.face_size * self.size / self.output_size,
                            output_size=self.size, rule=self.rule)
        return crop, labels


def synthetic_faces(n: int, seed: int, size: int, num_identities: int = 100) -> Dataset:  # type: ignore[type-arg]
    """``n`` synthetic faces (``facelib.data.synth``) as pretraining images of ``size`` px.

    Rendered at ``SYNTH_RENDER_SCALE * size`` and cut to the paper's crop geometry
    (``recipes.crop()``: the face box spans 190/256 of the side), as the real pretraining images
    are; items are ``(image, labels)`` with the renderer's labels (``identity`` etc.).
    """
    from .. import recipes
    from ..data.synth import SynthFaces

    geometry = recipes.crop()
    crop = FaceCrop(size, geometry.face_size, geometry.output_size, geometry.box_size)
    return SynthFaces(n, seed=seed, size=int(round(SYNTH_RENDER_SCALE * size)),
                      num_identities=num_identities, transform=crop)


class MultiCropDataset(Dataset):  # type: ignore[type-arg]
    """Multi-crop views of a dataset's images; indexed by ``(epoch, index)`` pairs.

    Args:
        base: items are an RGB uint8 image or a tuple ``(image, ...)``.
        multicrop: the transform.
        seed: run seed (augmentations depend on seed, epoch and index only).
        bad_items_path: JSON-lines file where unreadable items are recorded (None: in memory).
        max_tries: consecutive unreadable items tolerated before giving up.
        label_key: also return this label of the item (``(crops, label)``; supervised
            pretraining reads ``"identity"``); None returns the crops alone.
        unreadable: the run's record of unreadable items (default: one at ``bad_items_path``
            without a limit; the training loop checks the limit).
    """

    def __init__(self, base: Dataset, multicrop: MultiCrop, seed: int = 0,  # type: ignore[type-arg]
                 bad_items_path: str | os.PathLike[str] | None = None, max_tries: int = 10,
                 label_key: str | None = None, unreadable: UnreadableItems | None = None) -> None:
        self.base = base
        self.label_key = label_key
        self.multicrop = multicrop
        self.seed = seed
        self.unreadable = unreadable or UnreadableItems(bad_items_path, None, "pretraining image")
        self.bad_items_path = self.unreadable.path
        self.max_tries = max_tries

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def image(self, index: int) -> np.ndarray:
        """The (H, W, 3) uint8 image of item ``index`` (raises on an unreadable item)."""
        item = self.base[index]
        if isinstance(item, (tuple, list)):
            item = item[0]
        return as_rgb_uint8(item, where=f"{type(self.base).__name__}[{index}]")

    def _record(self, index: int, error: BaseException) -> None:
        rec = self.unreadable.record(self.base, index, error)
        warnings.warn(f"unreadable pretraining item {type(self.base).__name__}[{index}] ({rec['item']}): "
                      f"{rec['error']}; recorded and counted", RuntimeWarning, stacklevel=3)

    def __getitem__(self, key: tuple[int, int]) -> list[Tensor]:
        epoch, index = key
        n = len(self)
        for attempt in range(self.max_tries):
            i = (index + attempt) % n
            try:
                img = self.image(i)
            except READ_ERRORS as e:
                self._record(i, e)
                continue
            rng = np.random.default_rng([self.seed, epoch, index])
            if self.label_key is None:
                return self.multicrop(img, rng)
            return self.multicrop(img, rng), int(self.base[i][1][self.label_key])
        raise RuntimeError(f"{self.max_tries} consecutive unreadable items from index {index} "
                           f"of {type(self.base).__name__}: is the dataset readable?")


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields this process's ``(epoch, index)`` pairs for one epoch, batch after batch.

    The epoch's permutation comes from ``(seed, epoch)``; it is cut into global batches of
    ``batch_size`` (the incomplete last batch dropped) and process ``rank`` takes the
    ``rank``-th contiguous slice of each, so the processes' slices of batch i, concatenated in
    rank order, are exactly the single-process batch i.

    Call :meth:`set_epoch` before each epoch.
    """

    def __init__(self, data: Sized, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by the world size {world_size}")
        if len(data) < batch_size:
            raise ValueError(f"the dataset has {len(data)} images, fewer than one batch of {batch_size}")
        self.n = len(data)
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.local_batch = batch_size // world_size
        self.seed = seed
        self.epoch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch * self.local_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        nb = self.batches_per_epoch
        batches = perm[: nb * self.batch_size].reshape(nb, self.batch_size)
        mine = batches[:, self.rank * self.local_batch: (self.rank + 1) * self.local_batch].reshape(-1)
        return iter([(self.epoch, int(i)) for i in mine])
