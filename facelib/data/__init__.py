"""The data layer: synthetic labelled faces, readers for the real datasets, curated sets, subsets.

* :mod:`facelib.data.synth` (with :mod:`facelib.data.face_model`): deterministic labelled
  synthetic faces, the demo's stand-in for the licence-restricted datasets;
  :mod:`facelib.data.synth_set` writes a generated set as HDF5 shards + parquet manifest;
* :mod:`facelib.data.record`: the typed record every reader yields;
  :mod:`facelib.data.records_dataset` loads real records as synthetic-style ``(image, labels)``;
* :mod:`facelib.data.readers`: one module per real dataset format;
  :mod:`facelib.data.native` writes synthetic faces in those formats (the demo's roots);
* :mod:`facelib.data.curated`: Full VGG-Face, Small VGG-Face, Large-Scale-Face (supplement 2);
* :mod:`facelib.data.sampling`: fixed low-data subsets (supplement 1.3);
* :mod:`facelib.data.figures`: the page's figures; :mod:`facelib.data.cli`: ``facelib data``.

Submodules are imported on demand (``from facelib.data import synth``) so that importing the
package stays cheap.
"""
