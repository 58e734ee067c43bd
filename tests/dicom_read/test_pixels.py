"""Pixel decoding: every supported compressed syntax gives the values of its uncompressed twin."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from service.dicom import read_instance_pixels, read_series_from_datasets
from service.dicom.pixels import rescale
from service.errors import NumericError, PixelDataError

from ._series import data_file, series_datasets

TWINS = [
    ("MR_small.dcm", "MR_small_RLE.dcm"),
    ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
    ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
    ("MR_small.dcm", "MR_small_bigendian.dcm"),
    ("MR_small.dcm", "MR_small_implicit.dcm"),
    ("MR_small.dcm", "MR_small_expb.dcm"),
    ("emri_small.dcm", "emri_small_RLE.dcm"),
    ("emri_small.dcm", "emri_small_jpeg_ls_lossless.dcm"),
    ("emri_small.dcm", "emri_small_jpeg_2k_lossless.dcm"),
    ("emri_small.dcm", "emri_small_big_endian.dcm"),
    ("MR2_UNCR.dcm", "MR2_J2KR.dcm"),
    ("693_UNCR.dcm", "693_J2KR.dcm"),
]


@pytest.mark.parametrize(("plain", "encoded"), TWINS)
def test_compressed_matches_uncompressed_twin(plain, encoded):
    reference = read_instance_pixels(data_file(plain))
    decoded = read_instance_pixels(data_file(encoded))
    assert decoded.shape == reference.shape
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, reference)
    assert float(reference.std()) > 0  # a real image, not a constant


@pytest.mark.parametrize("name", ["JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "MR2_J2KI.dcm"])
def test_jpeg_lossless_and_j2k_match_gdcm(name):
    # No uncompressed twin is bundled: compare with GDCM's independent decoder (via SimpleITK).
    path = data_file(name)
    ours = read_instance_pixels(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    gdcm = sitk.GetArrayFromImage(reader.Execute()).astype(np.float32)
    assert ours.size == gdcm.size  # GDCM returns 2D for one frame, we return (1, rows, columns)
    np.testing.assert_array_equal(ours.reshape(gdcm.shape), gdcm)
    assert float(ours.std()) > 0


def test_compressed_series_reads_like_uncompressed(tmp_path):
    plain = read_series_from_datasets(series_datasets(3, source="MR_small.dcm"))

    def reencode(i, ds):  # keep the geometry, put the RLE-compressed pixels of the twin
        twin = pydicom.dcmread(data_file("MR_small_RLE.dcm"))
        arr = twin.pixel_array.astype(np.int32) + 3 * i
        ds.PixelData = arr.astype(twin.pixel_array.dtype).tobytes()
        ds.compress(pydicom.uid.RLELossless, encoding_plugin="pydicom")

    rle = read_series_from_datasets(series_datasets(3, source="MR_small.dcm", mutate=reencode))
    assert rle.source is not None and rle.source.header is not None
    assert rle.source.header.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    np.testing.assert_array_equal(rle.array, plain.array)


def test_unsupported_transfer_syntax_is_named():
    ds = pydicom.dcmread(data_file("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID("1.2.840.10008.1.2.4.100")  # MPEG2 video
    with pytest.raises(PixelDataError, match=r"MPEG2 .*1\.2\.840\.10008\.1\.2\.4\.100.*convert the files"):
        read_instance_pixels(ds)


def test_truncated_compressed_file_is_refused():
    # pydicom stops at the end of the file before the pixel data item delimiter
    with pytest.raises(PixelDataError, match=r"has no PixelData"):
        read_instance_pixels(data_file("emri_small_jpeg_2k_lossless_too_short.dcm"))


def test_corrupt_compressed_fragment_is_refused():
    ds = pydicom.dcmread(data_file("MR_small_jp2klossless.dcm"))
    data = bytearray(ds.PixelData)
    data[40:200] = bytes(160)  # zero the JPEG 2000 codestream header inside the fragment
    ds.PixelData = bytes(data)
    with pytest.raises(PixelDataError, match=r"JPEG 2000 .*cannot be decoded"):
        read_instance_pixels(ds)


def test_truncated_native_data_is_refused():
    ds = pydicom.dcmread(data_file("CT_small.dcm"))
    ds.PixelData = ds.PixelData[:1000]
    with pytest.raises(PixelDataError, match="cannot be decoded"):
        read_instance_pixels(ds)


def test_colour_image_is_refused():
    with pytest.raises(PixelDataError, match=r"SamplesPerPixel 3 .*select the greyscale"):
        read_instance_pixels(data_file("SC_rgb.dcm"))


def test_missing_pixel_data_is_refused():
    ds = pydicom.dcmread(data_file("CT_small.dcm"), stop_before_pixels=True)
    with pytest.raises(PixelDataError, match=r"has no PixelData"):
        read_instance_pixels(ds)


def test_rescale_overflow_raises_numeric_error():
    stored = np.array([[60000]], dtype=np.uint16)
    with pytest.raises(NumericError, match="overflow float32"):
        rescale(stored, 1e36, 0.0, "slice 1")
    with pytest.raises(PixelDataError, match="non-zero slope"):
        rescale(stored, 0.0, 0.0, "slice 1")


def test_ct_without_rescale_is_refused():
    def drop(i, ds):
        del ds.RescaleSlope

    with pytest.raises(PixelDataError, match=r"no RescaleSlope/RescaleIntercept, which CT images must carry"):
        read_series_from_datasets(series_datasets(2, mutate=drop))


def test_rle_decoder_panic_is_a_typed_error():
    # Found by bench/fuzz_dicom_reader.py: this corrupt RLE segment makes pylibjpeg-rle's Rust
    # decoder panic (pyo3 PanicException, a BaseException), which must not escape untyped.
    ds = pydicom.dcmread(data_file("MR_small_RLE.dcm"))
    data = bytearray(ds.PixelData)
    data[443] = 179
    ds.PixelData = bytes(data)
    with pytest.raises(PixelDataError, match=r"RLE Lossless .*cannot be decoded \(PanicException"):
        read_instance_pixels(ds)
