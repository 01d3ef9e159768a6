"""facelib: the executable companion to Bulat et al., "Pre-training strategies and datasets for
facial representation learning" (ECCV 2022).

Submodules are imported on demand (``from facelib import recipes``) so that importing the
package stays cheap: torch, OpenCV and onnxruntime load only where they are used.

onnxruntime (>= 1.3x on Linux) starts a telemetry uploader when it loads, which tries the
network and writes ``$TMPDIR/.ses``; nothing here may reach the network at run time, so the
documented opt-out ``ORT_DISABLE_TELEMETRY=1`` is set before any facelib module can import it
(unless the environment already sets it). Worker processes inherit it.
"""

import os as _os

_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
