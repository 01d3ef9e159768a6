"""The five downstream tasks of supplement 1.2 and the loop that fine-tunes any of them.

One module per task (:mod:`~facelib.tasks.recognition`, :mod:`~facelib.tasks.landmarks`,
:mod:`~facelib.tasks.au`, :mod:`~facelib.tasks.emotion`, :mod:`~facelib.tasks.recon3d`), the
shared input pipeline (:mod:`~facelib.tasks.base`, :mod:`~facelib.tasks.augment`), the
initialisations (:mod:`~facelib.tasks.backbone`) and the loop (:mod:`~facelib.tasks.finetune`).
"""
