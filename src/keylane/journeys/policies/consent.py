"""SMS keywords: what an inbound reply means (opt-out, opt-in, help or nothing).

Semantics (docs/journeys.md, "Consent and STOP"):

- :func:`normalise` trims, upper-cases (Unicode case folding), turns hyphens into spaces, drops
  every character that is not a letter, digit or space (punctuation, emoji) and collapses runs
  of spaces. ``" Opt-Out! "`` becomes ``"OPT OUT"``.
- :func:`classify` then matches the whole text exactly: :data:`OPT_OUT_WORDS`,
  :data:`OPT_IN_WORDS`, :data:`HELP_WORDS`. ``"STOP PLEASE"`` is not a keyword (no fuzzy
  matching), as in Braze's and the carriers' defaults.

Pure: imports the standard library only.
"""

from __future__ import annotations

import enum
import unicodedata

__all__ = ["HELP_WORDS", "OPT_IN_WORDS", "OPT_OUT_WORDS", "Keyword", "classify", "normalise"]

#: Opt-out keywords, after :func:`normalise` (``OPT-OUT`` normalises to ``OPT OUT``).
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
     "OPT OUT"}
)  # fmt: skip
#: Opt-in keywords (honoured only where consent existed before).
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
#: Help keywords.
HELP_WORDS = frozenset({"HELP", "INFO"})


class Keyword(enum.Enum):
    """What an inbound text means."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


def normalise(text: str) -> str:
    """The text as keywords are matched: trimmed, upper case, no punctuation, single spaces."""
    folded = text.casefold().upper().replace("-", " ")
    kept = []
    for char in folded:
        category = unicodedata.category(char)[0]
        if category in "LN":
            kept.append(char)
        elif category == "Z" or char.isspace():
            kept.append(" ")
    return " ".join("".join(kept).split())


def classify(text: str) -> Keyword:
    """The keyword an inbound text is, if any (exact match after :func:`normalise`)."""
    word = normalise(text)
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return Keyword.NONE
