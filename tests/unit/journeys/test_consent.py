"""consent: every STOP/START/HELP variant, normalisation, and what is not a keyword."""

from __future__ import annotations

import pytest

from keylane.journeys.policies.consent import (
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    Keyword,
    classify,
    normalise,
)

OPT_OUTS = ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
            "OPTOUT", "OPT OUT", "OPT-OUT"]  # fmt: skip


@pytest.mark.parametrize("word", OPT_OUTS)
@pytest.mark.parametrize("dress", ["{}", "  {}  ", "{}.", "{}!", "🛑 {}"])
def test_every_opt_out_word_in_any_case_and_punctuation(word, dress):
    assert classify(dress.format(word)) is Keyword.OPT_OUT
    assert classify(dress.format(word.lower())) is Keyword.OPT_OUT
    assert classify(word.title()) is Keyword.OPT_OUT


@pytest.mark.parametrize("word", ["START", "start", " Unstop ", "YES", "yes!"])
def test_opt_in_words(word):
    assert classify(word) is Keyword.OPT_IN


@pytest.mark.parametrize("word", ["HELP", "help", "Info", "INFO?"])
def test_help_words(word):
    assert classify(word) is Keyword.HELP


@pytest.mark.parametrize(
    "text", ["STOP PLEASE", "don't stop", "stopp", "", "   ", "when is the sale?", "OPT  IN"]
)
def test_anything_else_is_not_a_keyword(text):
    assert classify(text) is Keyword.NONE


def test_normalise_trims_folds_and_strips_punctuation():
    assert normalise("  Opt-Out!  ") == "OPT OUT"
    assert normalise("stop\tall") == "STOP ALL"
    assert normalise("S.T.O.P") == "STOP"
    assert {normalise(w) for w in OPT_OUTS} == OPT_OUT_WORDS
    assert {"START", "UNSTOP", "YES"} == OPT_IN_WORDS
    assert {"HELP", "INFO"} == HELP_WORDS
