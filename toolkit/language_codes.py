"""Language codes other formats want: ISO 639-3 (ELAN) and ISO 639-2/B (Matroska) from our ISO 639-1.

The 639-3 codes come from lingua (already the text language identifier, 75 languages); the
bibliographic 639-2 codes differ from them for a few languages only, listed here.
"""

from __future__ import annotations

from functools import cache

UNDETERMINED = "und"  # ISO 639-2/3 for "undetermined"
MULTIPLE = "mul"  # ISO 639-2/3 for "multiple languages"
# ISO 639-2/B where it differs from the 639-2/T (= 639-3 for these) code.
_BIBLIOGRAPHIC = {"sqi": "alb", "hye": "arm", "eus": "baq", "mya": "bur", "zho": "chi", "ces": "cze",
                  "nld": "dut", "fra": "fre", "kat": "geo", "deu": "ger", "ell": "gre", "isl": "ice",
                  "mkd": "mac", "mri": "mao", "msa": "may", "fas": "per", "ron": "rum", "slk": "slo",
                  "bod": "tib", "cym": "wel"}
_NOT_IN_LINGUA = {"uz": "uzb", "tg": "tgk", "ky": "kir", "tk": "tuk", "ps": "pus", "ku": "kur", "ce": "che"}


@cache
def iso639_3(code: str) -> str:
    """'az' -> 'aze'; an unknown or empty code -> 'und'."""
    from lingua import IsoCode639_1, Language

    code = (code or "").lower()
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code)).iso_code_639_3.name.lower()
    except (ValueError, AttributeError):
        return _NOT_IN_LINGUA.get(code, UNDETERMINED)


def iso639_2b(code: str) -> str:
    """'az' -> 'aze', 'fa' -> 'per': the form Matroska's Language element takes."""
    three = iso639_3(code)
    return _BIBLIOGRAPHIC.get(three, three)


@cache
def language_name(code: str) -> str:
    """'az' or 'aze' -> 'Azerbaijani'; a code lingua does not know is returned as it is."""
    from lingua import IsoCode639_1, IsoCode639_3, Language

    try:
        if len(code) == 2:
            return Language.from_iso_code_639_1(IsoCode639_1.from_str(code)).name.title()
        return Language.from_iso_code_639_3(IsoCode639_3.from_str(code)).name.title()
    except (ValueError, AttributeError):
        return {UNDETERMINED: "Undetermined", MULTIPLE: "Multiple languages"}.get(code, code)
