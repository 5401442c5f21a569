"""The demo tells the truth: its incoming tickets get a resolution written for their own problem.

The real pipeline (tasks run in this process) on PostgreSQL with the real embedder and knowledge base,
in the order ``make demo`` runs it: load the demo, train the label model, then the worker processes
the incoming tickets. The suggestion is today's stored-answer choice (the nearest past ticket of the
decided category); the model is not consulted, so the figures do not depend on it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from retrieval.answer_services import current_answer_ranker
from retrieval.label_services import train_label_model
from tickets.demo import content as demo_content
from tickets.demo.generator import load_demo, past_tickets
from tickets.models import Channel, PipelineStage, Suggestion, Ticket
from tickets.suggestions import train_answer_ranker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.usefixtures("knowledge_dir", "eager_celery"),
]

# The demo's duplicate-charge ticket is in German; its answer may be too.
DUPLICATE_CHARGE = re.compile(
    r"\b(duplicate|charged twice|second (charge|payment)|doppelte (Zahlung|Abbuchung)|zweite Abbuchung)\b",
    re.IGNORECASE,
)
REFUND = re.compile(r"refund|erstatt", re.IGNORECASE)


def _suggestions_after_make_demo(
    tmp_path: Path, capture: Any, *, train_ranker: bool = False
) -> dict[str, Suggestion]:
    """The suggestion of each incoming demo ticket (by its demo external id); ``train_ranker``: the
    answer ranker fitted too, as ``make demo`` does before its worker starts."""
    with capture(execute=False) as enqueued:  # loaded, not yet processed: no worker runs yet
        load_demo(data_dir=tmp_path)
    assert train_label_model().trained
    if train_ranker:
        assert train_answer_ranker().trained
    with capture(execute=True):  # the worker starts and takes the queued tickets
        for callback in enqueued:
            callback()
    incoming = Ticket.objects.filter(channel=Channel.DEMO, external_id__startswith="demo-new-")
    assert incoming.count() == len(demo_content.INCOMING)
    assert not incoming.exclude(stage=PipelineStage.DONE).exists()
    return {ticket.external_id: ticket.suggestions.get() for ticket in incoming}


@override_settings(PIPELINE_USE_MODEL="never")
def test_every_incoming_demo_ticket_gets_a_resolution_of_its_own_problem(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    suggestions = _suggestions_after_make_demo(tmp_path, django_capture_on_commit_callbacks)
    _assert_own_problems(suggestions)


@override_settings(PIPELINE_USE_MODEL="never")
def test_with_the_answer_ranker_fitted_as_make_demo_does_every_incoming_ticket_is_shown_its_answer(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """Issue 13's regression: the ranker fitted on the demo's 360 templated past tickets abstained on
    4 of the 8 hand-written incoming ones (confidence 0.10-0.45), though its first choice was of the
    right problem for all 8. Its answer map does not win out of fold on so small a history (left out),
    and 360 tickets are too few to calibrate on: the suggestions are shown, marked uncalibrated."""
    suggestions = _suggestions_after_make_demo(
        tmp_path, django_capture_on_commit_callbacks, train_ranker=True
    )
    stats = current_answer_ranker().stats
    assert stats["learned"] and stats["history_queries"] == 360
    assert stats["answer_map_kept"] is False and current_answer_ranker().answer_map is None
    assert stats["calibrated"] is False
    abstained = [number for number, s in suggestions.items() if s.abstained or not s.resolution_text]
    assert abstained == []
    assert all(s.suggestion_confidence is None for s in suggestions.values())  # not calibrated: no number
    _assert_own_problems(suggestions)


def _assert_own_problems(suggestions: dict[str, Suggestion]) -> None:
    problem_of = {
        row.external_id: (row.category.name, row.problem.subject) for row in past_tickets(timezone.now())
    }
    wrong = []
    for number, incoming in enumerate(demo_content.INCOMING_PROBLEMS, start=1):
        suggestion = suggestions[f"demo-new-{number:02d}"]
        assert suggestion.cited_ticket_ids, f"{incoming.subject!r} got no suggestion"
        source = Ticket.objects.get(pk=suggestion.cited_ticket_ids[0])
        assert suggestion.resolution_text == source.resolution  # the stored answer of the cited ticket
        category, problem = problem_of[source.external_id]
        if category != incoming.category or problem not in incoming.problems:
            wrong.append(f"{incoming.subject!r} got the answer to {problem_of[source.external_id]}")
    assert wrong == []

    # The ticket of issue 13: a duplicate charge gets a refund of the duplicate, not a plan switch.
    [number] = [
        number
        for number, incoming in enumerate(demo_content.INCOMING_PROBLEMS, start=1)
        if "Refund for duplicate charge" in incoming.problems
    ]
    duplicate = suggestions[f"demo-new-{number:02d}"].resolution_text
    assert DUPLICATE_CHARGE.search(duplicate) and REFUND.search(duplicate), duplicate
    assert not re.search(r"annual|monthly|switched|jährlich|monatlich", duplicate, re.IGNORECASE), duplicate


def test_a_resolution_may_only_repeat_the_values_of_its_own_problem() -> None:
    problem = demo_content.DemoProblem(
        subject="Refund for duplicate charge",
        body="Charged twice, {amount} each.",
        resolutions=("Hi {name}, refunded {amount} on {invoice}.",),
    )
    assert demo_content._resolution_problems(problem, "p") == [
        "p resolution 0: placeholders ['invoice'] not in its problem"
    ]
    assert demo_content._resolution_problems(replace(problem, resolutions=()), "p") == [
        "p: needs at least one resolution"
    ]


@pytest.mark.parametrize("minimum", [0, 5, 10])
def test_the_german_and_spanish_demo_tickets_land_right_or_in_triage_for_their_language(
    tmp_path: Path, django_capture_on_commit_callbacks: Any, minimum: int
) -> None:
    """The demo history holds 6 German and 5 Spanish past tickets (the rest English). The two incoming
    tickets in those languages are decided right either way; with the rule off (0) or at the default
    (5) they are routed, with 10 they go to triage saying why."""
    with override_settings(PIPELINE_USE_MODEL="never", LANGUAGE_MIN_HISTORY_TICKETS=minimum):
        suggestions = _suggestions_after_make_demo(tmp_path, django_capture_on_commit_callbacks)
    history = Ticket.objects.filter(channel=Channel.DEMO, status="resolved")
    assert (history.filter(language="de").count(), history.filter(language="es").count()) == (6, 5)
    checked = []
    for number, incoming in enumerate(demo_content.INCOMING_PROBLEMS, start=1):
        ticket = Ticket.objects.get(external_id=f"demo-new-{number:02d}")
        if ticket.language not in ("de", "es"):
            continue
        checked.append(ticket.language)
        suggestion = suggestions[ticket.external_id]
        assert suggestion.category is not None and suggestion.category.name == incoming.category
        reasons = ticket.audit_events.get(action__startswith="routing.").details["reasons"]
        language_reasons = [reason for reason in reasons if "a language the history barely covers" in reason]
        if minimum > 6:
            assert ticket.status == "needs_triage" and len(language_reasons) == 1, reasons
        else:
            assert ticket.status == "routed" and ticket.category == suggestion.category, reasons
            assert language_reasons == []
    assert sorted(checked) == ["de", "es"]
