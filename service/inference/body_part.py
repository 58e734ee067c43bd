"""Compare a DICOM series' Body Part Examined (0018,0015) with the site a model was trained for.

The attribute is optional and often stale (a protocol copied from another region), so a mismatch is
reported as a warning on the result, never used to choose a model or to refuse a request. Only
DICOM Defined Terms (PS3.16 Annex L) known to lie inside or outside a site are compared; an absent
or unrecognised value (``HEADNECK``, ``WHOLEBODY``, ``ABDOMENPELVIS``, free text) is not.
"""

from __future__ import annotations

from typing import Any

from service.inference.card import ModelCard, Site

#: Defined Terms of Body Part Examined that lie within each site.
SITE_TERMS: dict[Site, frozenset[str]] = {
    Site.BRAIN: frozenset({"BRAIN", "HEAD", "SKULL"}),
    Site.PELVIS: frozenset(
        {"PELVIS", "PROSTATE", "BLADDER", "RECTUM", "HIP", "SACRUM", "COCCYX", "UTERUS", "CERVIX", "OVARY"}
    ),
}

#: Defined Terms of regions outside every site of :data:`SITE_TERMS`.
OTHER_TERMS = frozenset(
    {
        "ABDOMEN", "ANKLE", "ARM", "BREAST", "CHEST", "CSPINE", "ELBOW", "EXTREMITY", "FOOT", "HAND",
        "HEART", "KIDNEY", "KNEE", "LEG", "LIVER", "LSPINE", "LUNG", "NECK", "SHOULDER", "TSPINE",
        "WRIST",
    }
)  # fmt: skip


def body_part(header: Any) -> str | None:
    """The series' Body Part Examined, upper case and stripped; None when absent or empty."""
    if header is None:
        return None
    value = str(header.get("BodyPartExamined", "") or "").strip().upper()
    return value or None


def site_of(term: str) -> Site | None:
    """The site a Defined Term lies in; None for a known term outside all sites, or an unknown one."""
    for site, terms in SITE_TERMS.items():
        if term in terms:
            return site
    return None


def site_mismatch(card: ModelCard, header: Any) -> str | None:
    """A warning when the series' Body Part Examined names a region outside ``card``'s site.

    Parameters
    ----------
    card
        The card of the model that will run.
    header
        The source series' header (a pydicom Dataset), or None for an image-file input.

    Returns
    -------
    str or None
        The warning text, or None when the site matches, the model serves any site, or the
        attribute is absent or not a term this module knows.
    """
    term = body_part(header)
    if term is None or card.site is Site.ANY:
        return None
    known = site_of(term)
    if known is card.site or (known is None and term not in OTHER_TERMS):
        return None
    return (
        f"the series' Body Part Examined is {term!r} but model {card.name!r} was trained for the "
        f"{card.site.value}: check that this is the model for this series (--site or --model); "
        "the output was computed anyway."
    )
