"""DICOM Part 10 encoding of the instances of one series, fast where they share data.

:func:`encode_part10` gives, for each dataset, exactly the bytes that
``pydicom.dcmwrite(buffer, ds, enforce_file_format=True)`` writes (128-byte preamble, ``DICM``,
file meta group, then the data set in explicit VR little endian), but it encodes a sequence
that several datasets share -- the same :class:`pydicom.sequence.Sequence` object, such as the
ReferencedSeriesSequence of a derived series, which lists every source instance -- only once.
For a 200-slice derived series that sequence has 200 items per instance, so encoding it 200
times was most of the writing time.

The datasets must use explicit VR little endian (``file_meta.TransferSyntaxUID``); a shared
sequence must not change while :func:`encode_part10` runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydicom.charset import default_encoding
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr_element, write_data_element, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian

from service.errors import OutputError

__all__ = ["encode_part10"]

_PREAMBLE = b"\x00" * 128 + b"DICM"


def _shared_sequences(datasets: Sequence[Dataset]) -> set[int]:
    """Identities of the top-level sequence values that appear in more than one dataset."""
    counts: Counter[int] = Counter()
    for ds in datasets:
        for elem in ds.elements():
            if elem.VR == "SQ":
                counts[id(elem.value)] += 1
    return {key for key, n in counts.items() if n > 1}


def encode_part10(datasets: Sequence[Dataset]) -> list[bytes]:
    """Part 10 bytes of each dataset (see the module docstring), in the given order.

    Raises
    ------
    OutputError
        A dataset has no file meta or a transfer syntax other than explicit VR little endian.
    """
    shared = _shared_sequences(datasets)
    cache: dict[tuple[int, str], bytes] = {}
    blobs: list[bytes] = []
    for index, ds in enumerate(datasets):
        meta = getattr(ds, "file_meta", None)
        syntax = None if meta is None else meta.get("TransferSyntaxUID")
        if syntax != ExplicitVRLittleEndian:
            raise OutputError(
                f"dataset {index} needs file meta with TransferSyntaxUID {ExplicitVRLittleEndian} "
                f"(explicit VR little endian), got {syntax}: "
                "build it with service.dicom.writer.encode_derived_series."
            )
        fp = DicomBytesIO()
        fp.write(_PREAMBLE)
        assert meta is not None
        write_file_meta_info(fp, meta, enforce_standard=True)
        fp.is_implicit_VR, fp.is_little_endian = False, True
        encodings = ds.get("SpecificCharacterSet", default_encoding)
        for tag in sorted(ds.keys()):
            if tag.element == 0 and tag.group > 6:  # retired group lengths are not written
                continue
            elem = ds[tag]
            key = (id(elem.value), repr(encodings))
            if elem.VR == "SQ" and key[0] in shared:
                if key not in cache:
                    part = DicomBytesIO()
                    part.is_implicit_VR, part.is_little_endian = False, True
                    write_data_element(part, elem, encodings)
                    cache[key] = part.getvalue()
                fp.write(cache[key])
                continue
            correct_ambiguous_vr_element(elem, ds, True)
            write_data_element(fp, elem, encodings)
        blobs.append(fp.getvalue())
    return blobs
