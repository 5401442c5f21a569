"""Input processing on plain text: markup, control characters, language, mood."""

from __future__ import annotations

from tickets.pipeline.text import MAX_MODEL_CHARS, is_very_negative, normalise, prepare


def test_markup_and_scripts_are_removed_and_the_removal_is_recorded() -> None:
    text, problems = normalise("<p>My <b>VPN</b> fails</p><script>alert('x')</script><style>p{}</style>")
    assert text == "My VPN fails"
    assert problems == ["markup was removed"]


def test_control_characters_and_replaced_bytes_are_reported() -> None:
    raw = b"Printer \xff\xfe jams\x07 again".decode("utf-8", errors="replace")
    text, problems = normalise(raw)
    assert "\x07" not in text and text.startswith("Printer")
    assert "invalid characters were replaced" in problems
    assert "control characters were removed" in problems


def test_plain_text_passes_untouched() -> None:
    assert normalise("  The   invoice\r\nis wrong  ") == ("The invoice\nis wrong", [])


def test_a_body_that_is_only_markup_is_not_usable() -> None:
    prepared = prepare(subject="Hello", body="<script>steal()</script>")
    assert not prepared.usable
    assert "the description is empty once markup and control characters are removed" in prepared.problems


def test_a_long_text_is_cut_for_the_model_and_says_so() -> None:
    prepared = prepare(subject="Log", body="error line\n" * 2000)
    assert len(prepared.text) == MAX_MODEL_CHARS
    assert any("cut" in problem for problem in prepared.problems)


def test_very_negative_needs_strong_words_or_shouting() -> None:
    assert is_very_negative("This is unacceptable!!! I will call my lawyer")
    assert is_very_negative("THIS IS THE WORST SERVICE, UNACCEPTABLE, FIX IT NOW")
    assert not is_very_negative("The export is a bit slow, could you have a look?")
    assert not is_very_negative("Worst case we can wait until Monday.")
