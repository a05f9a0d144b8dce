"""Typed array blobs: every storable dtype and shape round-trips; inconsistent blobs are refused."""

import numpy as np
import pytest

from hwlearn.runstore import BlobError, decode_array, encode_array

RNG = np.random.default_rng(20240611)


def sample(dtype, shape):
    if np.dtype(dtype) == np.bool_:
        return RNG.random(shape) > 0.5
    if np.dtype(dtype).kind == "c":
        return (RNG.normal(size=shape) + 1j * RNG.normal(size=shape)).astype(dtype)
    if np.dtype(dtype).kind in "iu":
        return RNG.integers(-1000 if np.dtype(dtype).kind == "i" else 0, 1000, size=shape).astype(dtype)
    return RNG.normal(size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32, np.bool_, np.complex128,
                                   np.uint8, np.float16, ">f8"])
@pytest.mark.parametrize("shape", [(), (0,), (3, 0), (7,), (3, 4), (2, 3, 4)])
def test_blob_round_trip_keeps_dtype_shape_and_values(dtype, shape):
    original = np.asarray(sample(dtype, shape))
    blob = encode_array(original)
    back = decode_array(blob.dtype, blob.shape, blob.data)
    assert back.dtype == original.dtype, (blob.dtype, original.dtype)
    assert back.shape == original.shape
    np.testing.assert_array_equal(back, original)
    assert back.flags.writeable


def test_fortran_ordered_array_round_trips_by_value():
    original = np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4))
    blob = encode_array(original)
    back = decode_array(blob.dtype, blob.shape, blob.data)
    np.testing.assert_array_equal(back, original)
    assert back.shape == (2, 3, 4)


def test_non_contiguous_view_round_trips():
    original = np.arange(40, dtype=np.int32).reshape(5, 8)[::2, 1::3]
    blob = encode_array(original)
    np.testing.assert_array_equal(decode_array(blob.dtype, blob.shape, blob.data), original)


def test_special_floats_survive():
    original = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324])
    blob = encode_array(original)
    back = decode_array(blob.dtype, blob.shape, blob.data)
    np.testing.assert_array_equal(back, original)
    assert np.signbit(back[3])


def test_blob_whose_shape_disagrees_with_its_bytes_is_refused():
    blob = encode_array(np.zeros((3, 4)))
    with pytest.raises(BlobError, match=r"shape \[4, 4\] of dtype <f8 needs 128 bytes, the blob holds 96"):
        decode_array(blob.dtype, "[4, 4]", blob.data)
    with pytest.raises(BlobError, match="needs 96 bytes"):
        decode_array(blob.dtype, blob.shape, blob.data[:-1])


@pytest.mark.parametrize("shape", ["[-1, 2]", "[1.5]", "3", "not json", "[true]"])
def test_blob_with_malformed_shape_is_refused(shape):
    with pytest.raises(BlobError, match="shape"):
        decode_array("<f8", shape, b"")


@pytest.mark.parametrize("dtype", ["O", "|O", "<U3", "nonsense", "[('a', '<f8')]"])
def test_blob_with_non_numeric_dtype_is_refused(dtype):
    with pytest.raises(BlobError, match="dtype"):
        decode_array(dtype, "[1]", b"\0" * 8)


def test_object_and_string_arrays_are_never_stored():
    with pytest.raises(BlobError, match="dtype object"):
        encode_array(np.array([{"a": 1}], dtype=object))
    with pytest.raises(BlobError, match="only bool, integer, float and complex"):
        encode_array(np.array(["a", "b"]))
