"""facelib: the executable companion to Bulat et al., "Pre-training strategies and datasets for
facial representation learning" (ECCV 2022).

Submodules are imported on demand (``from facelib import recipes``) so that importing the
package stays cheap: torch, OpenCV and onnxruntime load only where they are used.
"""

__version__ = "0.1.0"
