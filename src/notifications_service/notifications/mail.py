"""Text that goes into mail headers. Every mail builder passes free text through here."""

from __future__ import annotations

import unicodedata

# Control characters (CR, LF, TAB, NUL, ...) and the Unicode line and paragraph separators:
# any of them in a header either lets a sender inject headers or makes the mail library
# refuse the message (Django raises BadHeaderError on CR and LF).
_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def header_safe(text: str) -> str:
    """`text` on one line: control characters become spaces, runs of spaces one space."""
    cleaned = "".join(
        " " if unicodedata.category(char) in _BREAKING_CATEGORIES else char for char in text
    )
    return " ".join(cleaned.split())
