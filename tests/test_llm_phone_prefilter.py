"""The phone matcher's pre-filter (``could_read_as_phone`` and the phone label before a window) only
spares ``phonenumbers`` windows whose numbers redaction would drop anyway: redactions are the same with
and without it, on hand-made shapes, on random digit runs and on the shared data sets."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from inference_app.llm import redaction
from inference_app.llm.identifiers import _WINDOW, could_read_as_phone, phone_candidates, reads_as_phone
from inference_app.llm.redaction import redact
from tests.test_llm_identifiers import NEGATIVES, POSITIVES

SHAPES = [
    *(text for text, _ in POSITIVES),
    *NEGATIVES,
    "hotel 612345678 and hotel 612 345 678",  # "tel" inside a word before a bare run
    "my cell:   6123456789 (call after 5)",
    "tel. (030) 1234567, fax 0049 30 1234568",
    "Order 0301234567 / phone 030 1234567 / 2024-01-15 10.30",
    "Kontakt: 0170/1234567; Rechnung 2024 0001 2345",
    "415-555-2671 or 415 555 2671 or 4155552671",
    "05.03.2024 12.15.00 and 01 02 03 04 05",
    "( 612) 345 678 and 6 1 2 3 4 5 6 7 8",
]


def _without_prefilter(monkeypatch: pytest.MonkeyPatch, texts: list[str]) -> list[tuple[str, dict[str, int]]]:
    with monkeypatch.context() as patched:
        patched.setattr(redaction, "could_read_as_phone", lambda window: True)
        patched.setattr(redaction, "_PHONE_LABEL_ANYWHERE", re.compile(""))  # every window labelled
        return [(r.text, dict(r.counts)) for r in map(redact, texts)]


def _with_prefilter(texts: list[str]) -> list[tuple[str, dict[str, int]]]:
    return [(r.text, dict(r.counts)) for r in map(redact, texts)]


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces = [*"014679 -./()+", "00", "\u2009", "tel ", "order "]
    words = ["call", "ref", "hotel", "see", "at", "on"]
    return [
        " ".join(
            rng.choice(words) + " " + "".join(rng.choice(pieces) for _ in range(rng.randint(6, 18)))
            for _ in range(rng.randint(1, 4))
        )
        for _ in range(count)
    ]


def test_the_window_test_admits_every_number_the_reading_rules_keep() -> None:
    for text in [*SHAPES, *_random_texts(400, seed=18)]:
        for window in _WINDOW.finditer(text):
            for candidate in phone_candidates(window.group(0)):
                if reads_as_phone(candidate.raw, labelled=False):
                    assert could_read_as_phone(window.group(0)), (text, candidate.raw)


def test_the_window_test_rejects_what_cannot_read_as_a_phone_number() -> None:
    assert not could_read_as_phone("6123456789")  # a bare run: an order or an account
    assert not could_read_as_phone("65489-9855")  # two groups
    assert not could_read_as_phone("612 345 67")  # eight digits
    assert could_read_as_phone("612 345 678")
    assert could_read_as_phone("0301234567")
    assert could_read_as_phone("+49 170")


def test_redactions_are_the_same_without_the_prefilter(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [*SHAPES, *_random_texts(400, seed=7)]
    expected = _without_prefilter(monkeypatch, texts)
    assert sum("[PHONE]" in text for text, _ in expected) > 20  # the shapes do hold phone numbers
    assert _with_prefilter(texts) == expected


def test_redactions_of_the_shared_data_are_the_same_without_the_prefilter(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.bench_redaction import load

    digits = re.compile(r"\d(?:\D{0,3}\d){6}")  # the texts the phone pass has windows in
    texts = [text for _, text in load(None, 1500, shared_data) if digits.search(text)]
    expected = _without_prefilter(monkeypatch, texts)
    assert any("[PHONE]" in text for text, _ in expected)
    assert _with_prefilter(texts) == expected
