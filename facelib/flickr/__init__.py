"""Flickr-Face (supplement 3): the 100 tags, the ``flickr.photos.search`` client, the resumable
crawl, the dataset build, and a loopback stand-in for Flickr.

Modules: :mod:`~facelib.flickr.tags`, :mod:`~facelib.flickr.api`,
:mod:`~facelib.flickr.transport`, :mod:`~facelib.flickr.crawl`, :mod:`~facelib.flickr.build`,
:mod:`~facelib.flickr.local_server`, :mod:`~facelib.flickr.commands` (``facelib flickr ...``).
Shown in ``notebooks/02_flickr_face.py``.
"""

from facelib.flickr.tags import TAGS, normalize_tag

__all__ = ["TAGS", "normalize_tag"]
