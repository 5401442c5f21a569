"""HTML and quoted-printable e-mail bodies: flattened with their blocks apart, then redacted, so that no
card, IBAN, phone number or e-mail address reaches the stored text, the retrieval query or the prompt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from inference_app.llm import backends
from inference_app.llm.redaction import redact
from tests.pipeline.conftest import HISTORY
from tests.redaction_shapes import SHAPES, leaks
from tests.scripted_http import ScriptedServer, completion, scripted_server
from tests.ui_factories import make_resolved_history
from tickets.models import Category, Ticket
from tickets.pipeline.html_text import decode_quoted_printable, looks_like_markup, looks_quoted_printable
from tickets.pipeline.text import normalise, prepare
from tickets.services.submission import ticket_submit


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<table><tr><td>Card</td><td>4111</td></tr><tr><td>a</td><td>b</td></tr></table>", "Card 4111\na b"),
        ("<td>Card</td><td>4111</td>", "Card 4111"),
        ("<div>Call me</div><div>+49 170 1234567</div>", "Call me\n+49 170 1234567"),
        ("one<br>two<br/>three", "one\ntwo\nthree"),
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("<ul><li>one</li><li>two</li></ul>", "* one\n* two"),
        ("<span>a</span><span>b</span>", "a b"),
        ("<p>My <b>VPN</b> fails</p>", "My VPN fails"),
        ("x&nbsp;&#43;49&#64;&amp;", "x +49@&"),
        ("<!-- 4111 --><script>a='x'</script><style>p{}</style><p>kept</p>", "kept"),
        ("<p>unclosed<script>steal()", "unclosed"),
        ("<title>Re: x</title><select><option>a</option><option>b</option></select>", "a b"),
    ],
)
def test_html_is_flattened_with_block_boundaries_kept(markup: str, text: str) -> None:
    assert normalise(markup)[0] == text  # html_to_text, then whitespace tidied


@pytest.mark.parametrize(
    "markup",
    [
        "<div>" * 400 + "Card 4111 1111 1111 1111",  # past lxml's nesting limit
        "<p>Hi</p><div style='display:none'>Card 4111 1111 1111 1111</div>",  # hidden with CSS
    ],
)
def test_text_the_parser_would_drop_is_kept_for_redaction(markup: str) -> None:
    text, _ = normalise(markup)
    assert "Card 4111 1111 1111 1111" in text
    assert "[CARD]" in redact(text).text


@pytest.mark.parametrize(
    "evil",
    ["<!--" * 12_500, "<script>" * 6000, "<style>" * 7000, "<td>" * 12_000, "<a " * 16_000, "=3D" * 16_000],
)
def test_pathological_markup_is_handled_quickly(evil: str) -> None:
    # Not a timing test: a quadratic pattern (once "<!--.*?-->" per comment start) would not finish.
    assert isinstance(normalise(evil)[0], str)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tel +49 170 12=\n34567", "Tel +49 170 1234567"),
        ("a=\r\nb", "ab"),
        ("caf=C3=A9 =3D ok=20", "café = ok "),
        ("caf=E9 and na=EFve=20", "café and naïve "),  # Windows-1252, not UTF-8
    ],
)
def test_quoted_printable_leftovers_are_decoded(raw: str, expected: str) -> None:
    assert looks_quoted_printable(raw)
    assert decode_quoted_printable(raw) == expected


@pytest.mark.parametrize("text", ["a=1 b=2", "E=mc2 and x=3", "if x==2: y=AB", "SELECT * WHERE id=42", "=41"])
def test_ordinary_equals_signs_are_not_taken_for_quoted_printable(text: str) -> None:
    assert not looks_quoted_printable(text)
    assert decode_quoted_printable(text) == text


@pytest.mark.parametrize("text", ["if a < b and c > d", "<alice@corp.example>", "x <- y -> z", "3<4>2"])
def test_text_with_angle_brackets_is_not_markup(text: str) -> None:
    assert not looks_like_markup(text)
    assert normalise(text) == (text, [])


def test_what_was_done_to_the_text_is_recorded() -> None:
    text, problems = normalise("<div>Tel</div><div>+49 170 12=\n34567</div>")
    assert text == "Tel\n+49 170 1234567"
    assert problems == ["quoted-printable encoding was decoded", "markup was removed"]


@pytest.mark.parametrize(("name", "subject", "body"), SHAPES, ids=[name for name, _, _ in SHAPES])
def test_no_personal_data_is_left_after_preparing_and_redacting(name: str, subject: str, body: str) -> None:
    prepared = prepare(subject=subject, body=body)
    assert leaks(prepared.text), "the shape carries personal data before redaction"
    redacted = redact(prepared.text)
    assert leaks(redacted.text) == [], redacted.text
    assert redacted.total >= 1


# --- the real pipeline: input stage, retrieval, and the prompt sent to an OpenAI-compatible server ---

FORWARDED = (
    "<div>Hello, you charged my card twice.</div><table><tr><td>Card</td><td>4111 1111 1111 1111</td></tr>"
    "<tr><td>Phone</td><td>+49 170 1234567</td></tr><tr><td>Mail</td><td>ana.lopez@example.com</td></tr>"
    "</table><blockquote><div>IBAN</div><div>DE89 3704 0044 0532 0130 00</div></blockquote>"
    "<p>Please refund one of the two payments.</p>"
)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


@pytest.fixture
def html_history(db: Any, knowledge_dir: Any) -> dict[str, Category]:
    """The pipeline tests' company, with one past refund forwarded as HTML with a customer's data in it."""
    history = dict(HISTORY)
    team, resolution, examples = history["Refund"]
    history["Refund"] = (team, resolution, [*examples, ("Fwd: double charge", FORWARDED)])
    return make_resolved_history(history)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_an_html_ticket_reaches_storage_retrieval_and_the_prompt_without_personal_data(
    html_history: dict[str, Category],
    server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from retrieval import services

    queries: list[str] = []
    real_search = services.kb_search

    def recording_search(**kwargs: Any) -> Any:
        queries.append(kwargs["text"])
        return real_search(**kwargs)

    monkeypatch.setattr(services, "kb_search", recording_search)
    server.script(*[completion('{"category": "Refund", "priority": "normal", "best_example": "E1"}')] * 3)
    backends.get_backend.cache_clear()
    try:
        with (
            override_settings(
                PIPELINE_USE_MODEL="always", LLM_BACKEND="openai", LLM_BASE_URL=server.base_url, LLM_MODEL="m"
            ),
            django_capture_on_commit_callbacks(execute=True),
        ):
            submitted = ticket_submit(subject="Charged twice", body=FORWARDED, requester_email="a@x.example")
    finally:
        backends.get_backend.cache_clear()
    ticket = Ticket.objects.get(pk=submitted.pk)

    assert ticket.category == html_history["Refund"]
    assert "markup was removed" in ticket.validation_errors
    stored = ticket.pipeline_context["text"]
    assert leaks(stored) == [] and "Card [CARD]" in stored and "Phone [PHONE]" in stored
    details = ticket.audit_events.get(action="input.processed").details
    assert details["redactions"] == {"EMAIL": 1, "IBAN": 1, "CARD": 1, "PHONE": 1}
    assert queries and all(leaks(query) == [] for query in queries)
    neighbours = ticket.pipeline_context["neighbours"]
    forwarded_past = [n for n in neighbours if n["text"].startswith("Fwd: double charge")]
    assert forwarded_past, "the HTML past ticket is among the retrieved examples"
    assert all(leaks(n["text"]) == [] for n in neighbours)
    [request] = server.received
    prompt = "\n".join(message["content"] for message in request.body["messages"])
    assert "[CARD]" in prompt and leaks(prompt) == [], prompt
