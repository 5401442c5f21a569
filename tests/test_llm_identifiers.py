"""Phone numbers checked by ``phonenumbers`` and national identifiers checked by ``python-stdnum``, as
redaction uses them: what goes, and look-alikes (order numbers, timestamps, codes) that stay."""

from __future__ import annotations

import pytest

from inference_app.llm.identifiers import MAX_PHONE_WINDOWS, phone_candidates, reads_as_phone
from inference_app.llm.redaction import redact

POSITIVES = [
    # phone numbers in the shapes a flattened e-mail leaves them in
    ("Call me\n+49 170 1234567", "Call me\n[PHONE]"),
    ("+49-170-123 45 67 or +49.170.1234567", "[PHONE] or [PHONE]"),
    ("(0170) 123.45.67", "[PHONE]"),
    ("+33 6 12 34 56 78", "[PHONE]"),
    ("+1.202.456.1111", "[PHONE]"),  # not a version number
    ("+39 06 6982 0000 / +31 20 123 4567", "[PHONE] / [PHONE]"),
    ("0049 (0) 170 1234567", "[PHONE]"),
    ("Ring 020 7946 0958", "Ring [PHONE]"),
    ("Tel:0301234567", "Tel:[PHONE]"),
    ("Handy 01701234567", "Handy [PHONE]"),
    # dashes, odd spaces and full-width digits from word processors and phones
    ("+49 170\u20131234567", "[PHONE]"),
    ("0170 \u2011 1234567", "[PHONE]"),
    ("+49\u2009170\u20091234567", "[PHONE]"),
    ("\uff0b\uff14\uff19 \uff11\uff17\uff10 \uff11\uff12\uff13\uff14\uff15\uff16\uff17", "[PHONE]"),
    # cards written with non-breaking hyphens or full-width digits (Luhn still decides)
    ("card 4111\u20111111\u20111111\u20111111", "card [CARD]"),
    (
        "card \uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 "
        "\uff11\uff11\uff11\uff11",
        "card [CARD]",
    ),
    # national identifiers, validated by their check characters
    ("DNI 12345678Z, NIE X1234567L", "DNI [NATIONAL_ID], NIE [NATIONAL_ID]"),
    ("mi DNI es 12345678-Z", "mi DNI es [NATIONAL_ID]"),
    ("NIR 2 95 10 99 126 111 93", "NIR [NATIONAL_ID]"),
    ("numéro de sécu 295109912611193.", "numéro de sécu [NATIONAL_ID]."),
    ("codice fiscale RCCMNL83S18D969H", "codice fiscale [NATIONAL_ID]"),
    ("Steuer-ID: 36 574 261 809", "Steuer-ID: [NATIONAL_ID]"),
    ("meine Steuer-ID ist 36574261809", "meine Steuer-ID ist [NATIONAL_ID]"),
    ("BSN 111222333", "BSN [NATIONAL_ID]"),
]

NEGATIVES = [
    "12345678A is not a valid DNI",  # wrong check letter
    "order 36574261809 and ticket 111222333",  # valid check digits, but no ID label
    "36574261809",  # a Steuer-ID's digits without its label
    "NIR 2 95 10 99 126 111 92",  # wrong key
    "RCCMNL83S18D969X",  # wrong check letter
    "Bestellung 4001234567 vom 03.02.2024",
    "KB5034441 and KB5034123 updates",
    "timestamp 1700000000123, build 20240115",
    "Seriennummer 5CG1234XYZ, part 123-4567-890",
    "price 1 234 567,89 EUR",
    "ticket #0301234567",
    "my acct with you is 65489-9855",  # two groups: not read as a phone number
    "call 170 12",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_phone_numbers_and_national_ids_are_redacted(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_stay(text: str) -> None:
    result = redact(text)
    assert (result.text, result.counts) == (text, {})


def test_counts_name_the_kind() -> None:
    assert redact("DNI 12345678Z, tel +49 170 1234567").counts == {"NATIONAL_ID": 1, "PHONE": 1}


def test_the_library_finds_valid_numbers_and_the_reading_rules_keep_bare_digit_runs() -> None:
    [found] = phone_candidates("call +49 170 1234567 today")
    assert found.raw == "+49 170 1234567"
    assert reads_as_phone("+49 170 1234567", labelled=False)
    assert reads_as_phone("612 345 678", labelled=False)
    assert reads_as_phone("6123456789", labelled=True)
    assert not reads_as_phone("6123456789", labelled=False)
    assert phone_candidates("+49 170 1234567 is too short: 170 12") != []
    assert phone_candidates("+49 999 1") == []


def test_a_text_full_of_numbers_is_bounded() -> None:
    text = " ".join(f"+49 170 12345{n:02d}" for n in range(MAX_PHONE_WINDOWS * 3))
    assert len(phone_candidates(text)) == MAX_PHONE_WINDOWS
    # the pattern pass still takes the rest
    assert redact(text).counts == {"PHONE": MAX_PHONE_WINDOWS * 3}
