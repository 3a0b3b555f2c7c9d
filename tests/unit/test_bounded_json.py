"""JSON from outside is parsed within bounds, and the only error is BoundedJsonError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropcut.bounded_json import BoundedJsonError, parse_bounded_json


def test_ordinary_documents_parse():
    assert parse_bounded_json(b'{"prompt": "sepia", "n": [1, 2.5, "x"]}', max_bytes=100) == {
        "prompt": "sepia",
        "n": [1, 2.5, "x"],
    }
    assert parse_bounded_json('"a [ { not nesting"', max_bytes=100) == "a [ { not nesting"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[" * 60_000, "levels deep"),
        ("1" * 400, "digit"),
        ("1e400", "out of range"),
        ("NaN", "NaN"),
        ("{", "not valid JSON"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_hostile_documents_raise_one_named_error(text, why):
    with pytest.raises(BoundedJsonError, match=why):
        parse_bounded_json(text, max_bytes=100_000)


def test_the_size_is_bounded_before_anything_is_parsed():
    with pytest.raises(BoundedJsonError, match="over the 10-byte limit"):
        parse_bounded_json("[1, 2, 3, 4, 5]", max_bytes=10)


JSONISH = st.lists(
    st.sampled_from(["[", "{", "]", "}", '"', "\\", ",", ":", "1e400", "9" * 30, "NaN", "-", "0"])
    | st.text(max_size=5),
    max_size=400,
).map("".join)


@given(st.binary(max_size=2_000) | st.text(max_size=2_000) | JSONISH)
def test_any_input_parses_or_raises_bounded_json_error(data):
    with contextlib.suppress(BoundedJsonError):
        parse_bounded_json(data, max_bytes=1_000, max_depth=8)
