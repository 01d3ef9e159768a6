"""The base class of the errors a user can cause and fix: a bad argument or input file.

``facelib`` (:func:`facelib.cli.main`) prints the message of an :class:`InputError` as one line,
``facelib COMMAND: error: ...``, and exits with status 2, without a traceback. The errors that
derive from it say what is wrong and with which argument or file: a recipe override that does
not fit (:class:`facelib.recipes.RecipeError`), a checkpoint that cannot be read safely
(:class:`facelib.checkpoint.CheckpointError`), an initialisation that does not fit
(:class:`facelib.tasks.backbone.InitError`), too many unreadable images
(:class:`facelib.data.unreadable.UnreadableItemsError`), a run directory that holds another run
(:class:`facelib.tasks.finetune.FinetuneError`). Kept free of imports so that every module,
light or heavy, can use it.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(Exception):
    """A bad argument or input file: the command prints the message on one line and exits 2."""
