"""Redaction of personal data: what must go, and ordinary ticket content that must stay (EN, DE, ES)."""

from __future__ import annotations

import pytest

from inference_app.llm.redaction import Redacted, redact

# (text, what it must become)
POSITIVES = [
    # e-mail addresses
    ("Contact me at john.doe+tickets@example.co.uk please.", "Contact me at [EMAIL] please."),
    ("Meine E-Mail: jürgen.müller@beispiel.de", "Meine E-Mail: [EMAIL]"),
    ("Escríbeme a maria_garcia-lopez@correo.es, gracias", "Escríbeme a [EMAIL], gracias"),
    ("<alice@corp.example>", "<[EMAIL]>"),
    # phone numbers: international
    ("Call me on +1 (415) 555-2671 today", "Call me on [PHONE] today"),
    ("Tel.: +49 30 12345678", "Tel.: [PHONE]"),
    ("Mi móvil: +34 612 34 56 78.", "Mi móvil: [PHONE]."),
    ("+44 20 7946 0958", "[PHONE]"),
    ("ruf an unter 0049 30 1234567", "ruf an unter [PHONE]"),
    # phone numbers: national
    ("or 415-555-2671 or (415) 555 2671", "or [PHONE] or [PHONE]"),
    ("Handy 0171 1234567, Festnetz 030/1234567", "Handy [PHONE], Festnetz [PHONE]"),
    ("Bitte rufen Sie 0221-98765432 an", "Bitte rufen Sie [PHONE] an"),
    ("Mi teléfono es 612 345 678", "Mi teléfono es [PHONE]"),
    ("fijo 91 123 45 67", "fijo [PHONE]"),
    ("Appelez-moi au 06 12 34 56 78", "Appelez-moi au [PHONE]"),
    ("my number is 0301234567", "my number is [PHONE]"),
    ("phone: 5551234", "phone: [PHONE]"),
    ("Call 0800 123 4567 now", "Call [PHONE] now"),
    ("(030) 123 456 78", "[PHONE]"),
    ("+49 (0)30 1234567 or 1-800-555-0199", "[PHONE] or [PHONE]"),
    ("Telefon: 089 / 12 34 56-78", "Telefon: [PHONE]"),
    ("my cell is 07700 900123", "my cell is [PHONE]"),
    # payment cards (Luhn-valid only)
    ("Card 4111 1111 1111 1111 expires 12/27", "Card [CARD] expires 12/27"),
    ("Pay with 5500005555555559 please", "Pay with [CARD] please"),
    ("Visa 4012-8888-8888-1881, Amex 378282246310005", "Visa [CARD], Amex [CARD]"),
    ("Meine Kreditkarte 5105 1051 0510 5100 wurde belastet", "Meine Kreditkarte [CARD] wurde belastet"),
    ("tarjeta 6011 1111 1111 1117", "tarjeta [CARD]"),
    # IBANs (mod-97 valid)
    ("IBAN: DE89 3704 0044 0532 0130 00 THEN pay", "IBAN: [IBAN] THEN pay"),
    ("to GB82WEST12345698765432.", "to [IBAN]."),
    ("mi IBAN es ES91 2100 0418 4502 0005 1332", "mi IBAN es [IBAN]"),
    ("fr7630006000011234567890189", "[IBAN]"),
    # bank accounts after a label
    ("account number: 12345678", "account number: [ACCOUNT]"),
    ("acct #9876543210", "acct #[ACCOUNT]"),
    ("Kontonummer 1234567890 bei der Sparkasse", "Kontonummer [ACCOUNT] bei der Sparkasse"),
    ("Kto. 12345678", "Kto. [ACCOUNT]"),
    ("Konto-Nr.: 0123 4567 89", "Konto-Nr.: [ACCOUNT]"),
    ("número de cuenta: 0049 1500 05 1234567892", "número de cuenta: [ACCOUNT]"),
    ("my bank account is 00123456789", "my bank account is [ACCOUNT]"),
    # US social security numbers
    ("SSN 123-45-6789", "SSN [SSN]"),
    ("social security number 123456789", "social security number [SSN]"),
    # IPv4
    ("server at 192.168.1.20:8080 and 10.0.0.1.", "server at [IP] and [IP]."),
    ("mi IP pública es 203.0.113.7", "mi IP pública es [IP]"),
    # URLs with credentials or tokens, and other secrets
    ("clone https://bob:hunter2@git.example.com/repo.git now", "clone [SECRET] now"),
    ("reset link https://x.example/reset?token=abc123&u=1.", "reset link [SECRET]."),
    ("https://api.example.com/v1/items?api_key=XYZ", "[SECRET]"),
    ("postgres://app:s3cret@db.internal:5432/app", "[SECRET]"),
    ("(https://s3.example/b/o?X-Amz-Signature=ab12)", "([SECRET])"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.abc", "Authorization: Bearer [SECRET]"),
    ("password: hunter2", "password: [SECRET]"),
    ("Mein Passwort: Geheim123!", "Mein Passwort: [SECRET]"),
    ("contraseña = abc.def", "contraseña = [SECRET]"),
]

NEGATIVES = [
    # versions and error codes
    "Updated to version 2.3.1 and then 10.0.19041.1, now on v2.3.10 with Python 3.11.7",
    "error 0x80070005 and E1234, HTTP 404 and 500, exit code -1073741819",
    "Fehlercode 0x8007000E nach dem Update auf 4.2.0",
    "version 1.2.3.4 installed",
    # dates and times
    "It started on 2024-01-15 14:30 and again 2024-01-16T09:05:33",
    "seit dem 15.01.2024 um 10:30 Uhr, zuletzt am 01.02.2024 10:30",
    "desde el 15/01/2024 a las 10:30, y el 12/03/2024",
    "call back at 14:30 on 2024-03-01",
    "Build 20240115 failed at step 12 of 345",
    # order and ticket numbers
    "order 123456 and ticket SB-7KQ2-M9XD",
    "Bestellung 4001234567 vom 03.02.2024",
    "Pedido número 987654321 del 12/03/2024",
    "Order number 4111111111111111 shipped",
    "ticket #0301234567 is still open",
    "Rechnungsnummer 2024-000123",
    "tracking 1Z999AA10123456784",
    # money and prices
    "Invoice total $1,234.56 and €1.234,56 and 1 234 567,89 EUR; price 49.99 USD",
    "Betrag 129,00 € statt 99 €",
    "importe 45,50 euros, antes 1.299,00 €",
    "charged me twice: USD 2,500.00",
    # ordinary numbers
    "It happens 3 times a day, port 8080, 1500 users, 25 licenses, 99.9% uptime, retry 3/5",
    "timestamp 1700000000123",
    "random 1234567890123456 number",
    "I have 3 accounts, accounting for 2024 and 2025",
    "IBAN DE89 3704 0044 0532 0130 01 is rejected",  # mod-97 invalid
    "IP 256.1.1.1 is invalid, and 1.2.3 is a version",
    "000-12-3456 is not an SSN",
    "See https://example.com/docs/v2.3.1/install?page=2 and mailto links",
    "My password is wrong",
    "Call me back about order 4001234567",
    "2023-10-05 12:30:45,123 ERROR in worker",
    "windows build 10.0.22631.2861, RAM 16 GB, i7-1165G7",
    "Invoice INV-2024-00123 for 1.299,00 EUR, Seriennummer 5CG1234XYZ",
    "MAC 00:1A:2B:3C:4D:5E, open between 9 and 17 h",
    "Je me renseigne sur l'ordinateur portable Dell XPS 13 9310 avant un achat.",
    "Tel. Durchwahl 12 34",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_personal_data_is_replaced_by_typed_placeholders(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_ticket_content_is_left_alone(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.counts == {}
    assert result.total == 0


def test_counts_per_kind() -> None:
    result = redact(
        "I am ana@example.com (or ana.b@example.org), tel +49 171 1234567, card 4111 1111 1111 1111, "
        "IBAN DE89370400440532013000, from 10.1.2.3, on 2024-01-15 about order 123456."
    )
    assert result.counts == {"EMAIL": 2, "PHONE": 1, "CARD": 1, "IBAN": 1, "IP": 1}
    assert result.total == 6
    assert "2024-01-15" in result.text
    assert "order 123456" in result.text


def test_a_whole_ticket_in_german() -> None:
    text = (
        "Hallo, seit dem Update auf Version 3.2.1 am 12.03.2024 stürzt die App mit Fehler 0x80004005 ab. "
        "Meine Bestellnummer ist 100234567, Betrag 59,90 €. Bitte zurückrufen unter 0171 9876543 oder "
        "schreiben an k.schmidt@web.de. Kontonummer 0532013000."
    )
    result = redact(text)
    assert result.counts == {"EMAIL": 1, "ACCOUNT": 1, "PHONE": 1}
    for kept in ("3.2.1", "12.03.2024", "0x80004005", "100234567", "59,90 €"):
        assert kept in result.text
    for gone in ("0171 9876543", "k.schmidt@web.de", "0532013000"):
        assert gone not in result.text


def test_a_whole_ticket_in_spanish() -> None:
    text = (
        "Hola, el pedido 556677 del 03/04/2024 (importe 120,00 €) no llegó. Pagué con la tarjeta "
        "4012 8888 8888 1881. Mi teléfono es 612 345 678 y mi correo luis@ejemplo.es. Error E1234."
    )
    result = redact(text)
    assert result.counts == {"EMAIL": 1, "CARD": 1, "PHONE": 1}
    for kept in ("pedido 556677", "03/04/2024", "120,00 €", "E1234"):
        assert kept in result.text


def test_private_use_characters_in_the_input_cannot_confuse_the_phone_pass() -> None:
    result = redact("odd \ue000\ue100\ue000 text on 2024-01-15 call 030 1234567")
    assert result.text == "odd" + " " * 5 + "text on 2024-01-15 call [PHONE]"


def test_many_protected_spans_come_back_in_order() -> None:
    dates = [f"2024-01-{day:02d}" for day in range(1, 29)] * 60  # more than one placeholder digit
    text = " ".join(dates) + " tel 030 1234567"
    result = redact(text)
    assert result.text == " ".join(dates) + " tel [PHONE]"


@pytest.mark.parametrize(
    "evil",
    [
        "1" * 50_000,
        "1 " * 25_000,
        "a@" * 20_000,
        "a." * 25_000 + "@",
        "+" + "1-" * 20_000,
        "DE89" + " 1234" * 5000,
        "1." * 25_000,  # once quadratic: an unbounded amount before a currency sign
        "1," * 25_000,
        "(12)-" * 10_000,
        "route this to " * 3000,
    ],
)
def test_pathological_input_is_handled_quickly(evil: str) -> None:
    # Not a timing test: a regex with catastrophic backtracking would not finish at all.
    assert isinstance(redact(evil), Redacted)


def test_empty_and_plain_text() -> None:
    assert redact("") == Redacted(text="", counts={})
    assert redact("The printer on floor 3 is jammed.").text == "The printer on floor 3 is jammed."
