"""Language identification with the real py3langid model, and the rule for languages the history lacks."""

from __future__ import annotations

import pytest

from tickets.pipeline.language import (
    DEFAULT_CANDIDATES,
    detect_language,
    detect_language_scored,
    unsupported_language_reason,
)
from tickets.pipeline.text import prepare


@pytest.mark.parametrize(
    ("text", "language"),
    [
        # short: a subject line, as many tickets are
        ("Doppelte Abbuchung für März", "de"),
        ("No puedo entrar: código de verificación inválido", "es"),
        ("Impossible de me connecter", "fr"),
        ("Cannot log in to my account", "en"),
        ("Factuur klopt niet", "nl"),
        # long
        (
            "Hallo, uns wurde der Business-Tarif diesen Monat zweimal von der Kreditkarte abgebucht, "
            "jeweils 249,00 EUR am 4. März. Bitte erstatten Sie die zweite Zahlung. Viele Grüße, Jonas",
            "de",
        ),
        (
            "Olá, não consigo aceder à minha conta desde ontem: o código de verificação é sempre inválido "
            "e já pedi um novo três vezes. Obrigado pela ajuda.",
            "pt",
        ),
        (
            "Since yesterday the VPN tunnel disconnects after a few seconds when I work from home, and "
            "reinstalling the client did not help.",
            "en",
        ),
    ],
)
def test_short_and_long_texts(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["", "ok", "Hi!", "12345 67890 !!!", "ERR_42 #9913"])
def test_too_short_to_tell_is_undetermined(text: str) -> None:
    assert detect_language(text) == ""


def test_mixed_text_is_the_language_of_most_of_it() -> None:
    mostly_german = (
        "Hallo Support-Team, seit dem Update stürzt die App beim Öffnen der Rechnungen jedes Mal ab, und "
        "ich kann meine Belege nicht mehr herunterladen. Error message: 'unexpected token in JSON'."
    )
    mostly_english = (
        "Hello, since the update the app crashes every time I open the invoices and I can no longer "
        "download my receipts. Vielen Dank!"
    )
    assert detect_language(mostly_german) == "de"
    assert detect_language(mostly_english) == "en"


def test_candidates_restrict_the_choice_and_all_languages_are_available() -> None:
    italian = "Non riesco ad accedere al mio account, la password non funziona più da ieri sera"
    assert detect_language(italian) == "it"
    assert detect_language(italian, candidates=("en", "de")) in {"en", "de", ""}
    swedish = "Jag kan inte logga in på mitt konto, lösenordet fungerar inte längre sedan i går"
    assert "sv" not in DEFAULT_CANDIDATES
    assert detect_language(swedish, candidates=()) == "sv"  # (): all 97 of the model's languages
    language, probability = detect_language_scored(swedish, candidates=())
    assert language == "sv" and 0.5 <= probability <= 1.0


def test_an_unknown_candidate_is_refused() -> None:
    with pytest.raises(ValueError, match="xx"):
        detect_language("Some text that is long enough to classify", candidates=("en", "xx"))


def test_prepare_records_the_language() -> None:
    prepared = prepare(subject="Rechnung doppelt", body="Bitte erstatten Sie die zweite Zahlung.")
    assert prepared.language == "de"


def test_the_reason_names_the_language_and_the_count() -> None:
    counts = {"en": 120, "de": 3}
    reason = unsupported_language_reason(language="de", history_counts=counts, minimum=20)
    assert reason == (
        "written in German (de), a language the history barely covers: "
        "3 resolved tickets in it, fewer than 20"
    )
    spanish = unsupported_language_reason(language="es", history_counts=counts, minimum=20)
    assert "Spanish (es)" in spanish and "0 resolved tickets" in spanish
    assert unsupported_language_reason(language="en", history_counts=counts, minimum=20) == ""
    assert unsupported_language_reason(language="", history_counts=counts, minimum=20) == ""  # undetermined
    assert unsupported_language_reason(language="de", history_counts=counts, minimum=0) == ""  # rule off
    assert unsupported_language_reason(language="de", history_counts={}, minimum=20) == ""  # nothing known
