"""New DICOM UIDs for derived objects.

UIDs are ``2.25.<128-bit random UUID as an integer>`` (ISO/IEC 9834-8, DICOM PS3.5 B.2): globally
unique without a registered organisation root, and carrying no information about the patient.
"""

from __future__ import annotations

from pydicom.uid import UID, generate_uid

#: Implementation Class UID written into the file meta of every file radtranslate creates.
IMPLEMENTATION_CLASS_UID = UID("2.25.181935302916587470011466962346455346151")


def new_uid() -> UID:
    """A fresh random UID under the ``2.25`` root."""
    return generate_uid(prefix=None)
