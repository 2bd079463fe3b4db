"""Byte ranges mean what Python slices mean: `a-b` is data[a:b+1], `a-` is data[a:], `-n` is data[-n:]; a range
that selects nothing is unsatisfiable, and a header this server does not take asks for the whole blob."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierml.fleet.ranges import Unsatisfiable, parse_range

sizes = st.integers(min_value=0, max_value=5000)
offsets = st.integers(min_value=0, max_value=6000)


def _selected(header: str, size: int) -> bytes | None:
    """What the parsed range selects of `size` distinct-ish bytes (None: the whole blob)."""
    data = bytes(i % 251 for i in range(size))
    found = parse_range(header, size)
    return None if found is None else data[found.start:found.end + 1]


@given(sizes, offsets, offsets)
def test_first_last_is_a_slice(size, first, last):
    data = bytes(i % 251 for i in range(size))
    header = f"bytes={first}-{last}"
    if last < first:
        assert parse_range(header, size) is None  # invalid: ignored
    elif first >= size:
        with pytest.raises(Unsatisfiable):
            parse_range(header, size)
    else:
        assert _selected(header, size) == data[first:last + 1]
        found = parse_range(header, size)
        assert found is not None and found.content_range(size) == f"bytes {first}-{min(last, size - 1)}/{size}"


@given(sizes, offsets)
def test_open_ranges_and_suffixes_are_slices(size, n):
    data = bytes(i % 251 for i in range(size))
    if n >= size:
        with pytest.raises(Unsatisfiable):
            parse_range(f"bytes={n}-", size)
    else:
        assert _selected(f"bytes={n}-", size) == data[n:]
    if n == 0 or size == 0:
        with pytest.raises(Unsatisfiable):
            parse_range(f"bytes=-{n}", size)
    else:
        assert _selected(f"bytes=-{n}", size) == data[-n:]


@given(st.text(max_size=40), sizes)
def test_any_header_is_a_range_the_whole_blob_or_unsatisfiable(header, size):
    try:
        found = parse_range(header, size)
    except Unsatisfiable:
        return
    assert found is None or 0 <= found.start <= found.end < size


@pytest.mark.parametrize("header", ["", "items=0-5", "bytes=0-1,4-5", "bytes=-", "bytes=a-b", "bytes=5-2",
                                    "bytes=²-3", "bytes 0-5"])
def test_headers_this_server_does_not_take_ask_for_the_whole_blob(header):
    assert parse_range(header, 100) is None
