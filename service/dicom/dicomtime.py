"""Strict parsing of DICOM DA, TM and DT values for time arithmetic (PET decay).

Errors are :class:`~service.errors.SUVError` naming the tag, the value and the fix, because
the only time arithmetic radtranslate does is for SUVbw. Nothing is guessed: a missing
date, month or day is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from service.errors import SUVError

__all__ = ["as_text", "parse_da", "parse_dt", "parse_tm"]

_TM_RE = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")
_DT_RE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")


def as_text(value: Any) -> str:
    """A DICOM value as stripped text ( for None)."""
    return "" if value is None else str(value).strip()


def parse_da(value: Any, *, tag: str) -> dt.date:
    """Parse a DICOM DA (``YYYYMMDD``; legacy ``YYYY.MM.DD``) or raise :class:`SUVError` naming ``tag``."""
    text = as_text(value).replace(".", "")
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise SUVError(
            f"{tag} must be a DICOM date YYYYMMDD, got {as_text(value)!r}: correct the tag in the PET header."
        ) from None


def parse_tm(value: Any, *, tag: str) -> dt.time:
    """Parse a DICOM TM (``HH[MM[SS[.F{1,6}]]]``; legacy ``HH:MM:SS``) or raise :class:`SUVError`."""
    text = as_text(value)
    if re.fullmatch(r"\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?", text):
        text = text.replace(":", "")
    match = _TM_RE.match(text)
    try:
        if match is None:
            raise ValueError
        hh, mm, ss, frac = match.groups()
        micro = round(float(frac) * 1e6) if frac else 0
        return dt.time(int(hh), int(mm or 0), int(ss or 0), min(micro, 999_999))
    except ValueError:
        raise SUVError(
            f"{tag} must be a DICOM time HHMMSS.FFFFFF, got {as_text(value)!r}: "
            "correct the tag in the PET header."
        ) from None


def parse_dt(value: Any, *, tag: str, utc_offset: Any = None) -> dt.datetime:
    """Parse a DICOM DT to a naive datetime; an offset must match TimezoneOffsetFromUTC (``utc_offset``)."""
    text = as_text(value)
    match = _DT_RE.match(text)
    fix = "correct the tag in the PET header."
    if match is None or match.group(4) is None:
        raise SUVError(f"{tag} must be a DICOM date-time YYYYMMDDHHMMSS.FFFFFF, got {text!r}: {fix}")
    year, month, day, hh, mm, ss, frac, offset = match.groups()
    if month is None or day is None:
        raise SUVError(f"{tag} must include month and day, got {text!r}: {fix}")
    if offset is not None and offset != as_text(utc_offset):
        raise SUVError(
            f"{tag} has UTC offset {offset} but TimezoneOffsetFromUTC (0008,0201) is "
            f"{as_text(utc_offset)!r}, so it cannot be compared with the series times: "
            "store the injection time in the scanner's local time, or set a matching TimezoneOffsetFromUTC."
        )
    micro = round(float(frac) * 1e6) if frac else 0
    try:
        return dt.datetime(
            int(year), int(month), int(day), int(hh), int(mm or 0), int(ss or 0), min(micro, 999_999)
        )
    except ValueError:
        raise SUVError(f"{tag} is not a valid date-time, got {text!r}: {fix}") from None
