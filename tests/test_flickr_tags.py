"""The 100 tags of supplement 3."""

import pytest

from facelib import recipes
from facelib.flickr.tags import TAGS, check_tags, normalize_tag


def test_one_hundred_distinct_tags_as_printed():
    assert len(TAGS) == 100 == recipes.datasets().flickr_tags
    assert len(set(TAGS)) == 100
    assert len({normalize_tag(t) for t in TAGS}) == 100
    assert TAGS[:6] == ("human", "people", "person", "face", "fashion", "portrait")
    assert TAGS[-3:] == ("military", "protest", "crowds")
    for t in ("40s", "90s", "gigs", "selfie", "grandparent", "ancestor", "classmate", "ladies"):
        assert t in TAGS


def test_group_photo_is_one_tag():
    assert "group photo" in TAGS
    assert "group" not in TAGS and "photo" not in TAGS
    assert TAGS.index("group photo") == TAGS.index("classmate") + 1


def test_normalize_tag_is_flickrs_machine_form():
    assert normalize_tag("group photo") == "groupphoto"
    assert normalize_tag("Group-Photo!") == "groupphoto"
    assert normalize_tag("40s") == "40s"


def test_check_tags_rejects_empty_and_duplicates():
    assert check_tags(["people", "group photo"]) == ("people", "group photo")
    with pytest.raises(ValueError, match="at least one"):
        check_tags([])
    with pytest.raises(ValueError, match="'groupphoto' duplicates 'group photo'"):
        check_tags(["group photo", "groupphoto"])
    with pytest.raises(ValueError, match="not a usable tag"):
        check_tags(["people", "  "])
