"""``python -m facelib``: the same command line as the ``facelib`` script."""

from facelib.cli import main

raise SystemExit(main())
