"""Arrays as typed blobs: a dtype string, a shape string and the raw C-order bytes.

Never pickles. The dtype string is numpy's ``dtype.str`` (byte order, kind, item size:
``<f8``, ``|b1``, ``<c16``); the shape is a JSON list (``[]`` for a 0-d array). Only numeric and
boolean dtypes are stored, so a blob can always be read back with ``np.frombuffer``.
Fortran-ordered arrays are stored in C order: values and shape round-trip, memory order does not."""

from __future__ import annotations

import json
from dataclasses import dataclass
from math import prod

import numpy as np

from hwlearn.runstore.errors import BlobError

# bool, signed and unsigned integers, floats, complex.
STORABLE_KINDS = frozenset("biufc")


@dataclass(frozen=True)
class Blob:
    dtype: str
    shape: str
    data: bytes


def encode_array(array, what: str = "array") -> Blob:
    """Encode an array (or anything np.asarray accepts) as a typed blob."""
    arr = np.asarray(array)
    if arr.dtype.kind not in STORABLE_KINDS:
        raise BlobError(f"{what} has dtype {arr.dtype} (kind {arr.dtype.kind!r}); only bool, integer, "
                        "float and complex arrays are stored")
    return Blob(dtype=arr.dtype.str, shape=json.dumps(list(arr.shape)), data=arr.tobytes(order="C"))


def parse_dtype(dtype: str, what: str = "blob") -> np.dtype:
    try:
        parsed = np.dtype(dtype)
    except (TypeError, ValueError) as exc:
        raise BlobError(f"{what}: dtype {dtype!r} is not a numpy dtype string ({exc})") from None
    if parsed.kind not in STORABLE_KINDS or parsed.fields is not None or parsed.subdtype is not None:
        raise BlobError(f"{what}: dtype {dtype!r} is not a plain bool, integer, float or complex dtype")
    return parsed


def parse_shape(shape: str, what: str = "blob") -> tuple[int, ...]:
    try:
        parsed = json.loads(shape)
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, list) or not all(type(n) is int and n >= 0 for n in parsed):
        raise BlobError(f"{what}: shape {shape!r} is not a JSON list of non-negative integers")
    return tuple(parsed)


def decode_array(dtype: str, shape: str, data: bytes, what: str = "blob") -> np.ndarray:
    """Rebuild the array of a typed blob; raises BlobError when the parts disagree."""
    parsed_dtype = parse_dtype(dtype, what)
    parsed_shape = parse_shape(shape, what)
    data = bytes(data) if data is not None else b""
    expected = prod(parsed_shape) * parsed_dtype.itemsize
    if len(data) != expected:
        raise BlobError(f"{what}: shape {list(parsed_shape)} of dtype {dtype} needs {expected} bytes, "
                        f"the blob holds {len(data)}")
    # frombuffer gives a read-only view of the bytes; copy so callers get an ordinary array.
    return np.frombuffer(data, dtype=parsed_dtype).reshape(parsed_shape).copy()
