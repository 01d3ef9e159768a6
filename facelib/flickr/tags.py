"""The 100 Flickr tags of Flickr-Face (supplement section 3).

"In order to increase the likelihood of finding a face in the image we downloaded images that
have one of the following 100 tags". The list below is the supplement's, in its order; the
authors' scraper did not ship it. ``"group photo"`` is one tag (Flickr stores it as
``groupphoto``: see :func:`normalize_tag`).

Used by :mod:`facelib.flickr.crawl`; shown in ``notebooks/02_flickr_face.py``.
"""

from __future__ import annotations

import re

__all__ = ["TAGS", "normalize_tag", "check_tags"]

TAGS: tuple[str, ...] = (
    "human", "people", "person", "face", "fashion", "portrait", "emotion", "expression",
    "affect", "happy", "sad", "anger", "angry", "smile", "laugh", "joy", "surprise", "disgust",
    "confused", "fear", "horror", "adult", "lady", "ladies", "beauty", "gentleman", "gentlemen",
    "man", "men", "woman", "women", "baby", "infant", "toddler", "kid", "child", "children",
    "senior", "father", "mother", "dad", "mom", "elderly", "grandfather", "grandmother",
    "grandpa", "grandma", "grandparent", "ancestor", "40s", "50s", "60s", "70s", "80s", "90s",
    "couple", "family", "brother", "sister", "sibling", "cousin", "wedding", "marriage",
    "funeral", "party", "formal", "boy", "girl", "teen", "teenager", "youth", "friend",
    "classmate", "group photo", "team", "gathering", "teacher", "professor", "lecturer", "coach",
    "tutor", "worker", "boss", "celebrity", "sport", "self", "selfie", "photoshoot", "concert",
    "gigs", "band", "dance", "marathon", "passenger", "army", "soldier", "marching", "military",
    "protest", "crowds",
)

_NON_TAG = re.compile(r"[^0-9a-z]+")


def normalize_tag(tag: str) -> str:
    """Flickr's machine form of a tag: lower case, spaces and punctuation removed.

    ``"group photo"`` -> ``"groupphoto"``, the form Flickr returns in the ``tags`` extra and
    matches in ``flickr.photos.search``.
    """
    return _NON_TAG.sub("", tag.lower())


def check_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate a tag selection: non-empty, no empty or duplicate (after normalisation) tags.

    Tags outside :data:`TAGS` are allowed (a user may crawl more), but must be well formed.

    Raises:
        ValueError: naming the offending tag.
    """
    if not tags:
        raise ValueError("tags: at least one tag is needed")
    seen: dict[str, str] = {}
    for t in tags:
        if not isinstance(t, str) or not normalize_tag(t):
            raise ValueError(f"tags: {t!r} is not a usable tag (letters or digits needed)")
        n = normalize_tag(t)
        if n in seen:
            raise ValueError(f"tags: {t!r} duplicates {seen[n]!r}")
        seen[n] = t
    return tuple(tags)
