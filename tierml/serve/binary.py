"""The binary tensor data extension: raw little-endian tensor bytes after the JSON header.

A BYTES tensor is a run of elements, each a 4-byte little-endian length followed by its bytes; every
other datatype is its elements at native size, row-major (BOOL is one byte, 0 or 1).
"""

from __future__ import annotations

import math
import struct

import numpy as np

from tierml.registry.datatypes import NUMPY
from tierml.serve.errors import bad_request

_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: int) -> tuple[bytes, memoryview]:
    """The JSON header and the binary tail of a body sent with `Inference-Header-Content-Length`."""
    if header_length > len(body):
        raise bad_request(f"Inference-Header-Content-Length is {header_length} but the body has only "
                          f"{len(body)} bytes; it must count the JSON header's bytes")
    view = memoryview(body)
    return bytes(view[:header_length]), view[header_length:]


def decode_tensor(name: str, datatype: str, shape: tuple[int, ...], data: memoryview) -> np.ndarray:
    """A tensor from its raw bytes, checked against the shape it claims."""
    count = math.prod(shape)
    if datatype == "BYTES":
        return decode_bytes(name, data, count).reshape(shape)
    dtype = NUMPY[datatype].newbyteorder("<")
    expected = count * dtype.itemsize
    if len(data) != expected:
        raise bad_request(f"input '{name}': shape {list(shape)} of {datatype} needs {expected} bytes of binary data, "
                          f"got {len(data)}")
    if datatype == "BOOL" and expected and np.frombuffer(data, np.uint8).max() > 1:
        raise bad_request(f"input '{name}': BOOL binary data must be bytes 0 or 1")
    return np.frombuffer(data, dtype).reshape(shape)


def decode_bytes(name: str, data: memoryview, count: int) -> np.ndarray:
    """`count` length-prefixed elements that must fill `data` exactly."""
    items = np.empty(count, dtype=object)
    pos = 0
    end = len(data)
    for i in range(count):
        if pos + 4 > end:
            raise bad_request(f"input '{name}': BYTES data ends after {i} of {count} elements (each element is a "
                              "4-byte little-endian length then its bytes)")
        (size,) = _LENGTH.unpack_from(data, pos)
        pos += 4
        if pos + size > end:
            raise bad_request(f"input '{name}': BYTES element {i} claims {size} bytes but only {end - pos} remain")
        items[i] = bytes(data[pos:pos + size])
        pos += size
    if pos != end:
        raise bad_request(f"input '{name}': {end - pos} bytes left over after its {count} BYTES elements")
    return items


def encode_tensor(array: np.ndarray) -> bytes:
    """A tensor's raw bytes (length-prefixed elements for BYTES / object arrays)."""
    if array.dtype.kind in "OSU":
        return encode_bytes(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def encode_bytes(array: np.ndarray) -> bytes:
    parts: list[bytes] = []
    for item in array.ravel():
        raw = item if isinstance(item, bytes) else str(item).encode()
        parts.append(_LENGTH.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)
