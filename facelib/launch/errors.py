"""The errors of :mod:`facelib.launch`: a bad launch request, a missed deadline, a lost result."""

from __future__ import annotations

from facelib.errors import InputError


class LaunchError(InputError, ValueError):
    """A cluster profile, resource request or submission is invalid (the message says why):
    ``facelib`` prints it on one line and exits 2 (:class:`facelib.errors.InputError`)."""


class JobTimeout(TimeoutError):
    """A job did not finish before the caller's deadline."""


class JobEndedWithoutResult(RuntimeError):
    """The scheduler reports the job over, but it wrote no result (cancelled, killed, OOM...)."""
