"""The five downstream tasks of supplement 1.2 and the loop that fine-tunes any of them.

One module per task (:mod:`~facelib.tasks.recognition`, :mod:`~facelib.tasks.landmarks`,
:mod:`~facelib.tasks.au`, :mod:`~facelib.tasks.emotion`, :mod:`~facelib.tasks.recon3d`), the
shared input pipeline (:mod:`~facelib.tasks.base`, :mod:`~facelib.tasks.augment`), real
datasets as inputs (:mod:`~facelib.tasks.records`), the initialisations
(:mod:`~facelib.tasks.backbone`), one fine-tuning run with exact resume
(:mod:`~facelib.tasks.finetune`), the grid of runs in this process or as SLURM job arrays and
the pages' glue (:mod:`~facelib.tasks.grid`), the trivial baseline and the pages' verdict
(:mod:`~facelib.tasks.baseline`), the ``facelib finetune`` command (:mod:`~facelib.tasks.cli`)
and the pages' figures (:mod:`~facelib.tasks.plots`).
Metrics live in :mod:`facelib.metrics`. Shown in ``notebooks/04_face_recognition.py`` ...
``08_3d_reconstruction.py``.
"""
