"""The model stage fetches the answer ranker's evidence once per batch (a fixed number of queries, the
query vectors retrieval searched with), and every ticket gets the answer it would get alone with the
same vectors. PostgreSQL, the real embedder and knowledge base."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from tests.pipeline.test_suggestions import REFUND, VPN, _submit
from tickets.models import Category
from tickets.pipeline.model import DecisionSetup, answer_evidence_for, plan
from tickets.suggestions import choose_answer, train_answer_ranker

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

LOGIN = {
    "subject": "Locked out after password reset",
    "body": "I reset my password this morning and now the login page says my account is locked.",
    "requester_email": "ana@customer.example",
}


@override_settings(PIPELINE_USE_MODEL="never")
def test_a_batch_gets_the_answers_each_ticket_gets_alone_in_a_fixed_number_of_queries(
    company: dict[str, Category],
    django_capture_on_commit_callbacks: Any,
    django_assert_max_num_queries: Any,
) -> None:
    assert train_answer_ranker().trained
    tickets = [_submit(django_capture_on_commit_callbacks, fields) for fields in (REFUND, VPN, LOGIN)]
    setup = DecisionSetup.current()
    items = [(t.pipeline_context, plan(t.pipeline_context, setup), t.text_embedding) for t in tickets]
    assert all(p.answer_pool and v for _, p, v in items)
    with django_assert_max_num_queries(3):  # answer embeddings, ages, feedback: for the whole batch
        evidence = answer_evidence_for(items)
    # the query vectors are the ones retrieval searched with, not embedded again
    searched = [bytes(v or b"") for _, _, v in items]
    assert [evidence.queries[c["text"]].tobytes() for c, _, _ in items] == searched
    for context, decided, vector in items:
        kwargs = {
            "text": context["text"],
            "neighbours": decided.answer_pool,
            "category": decided.base.category,
        }
        alone = choose_answer(**kwargs, evidence=answer_evidence_for([(context, decided, vector)]))
        batched = choose_answer(**kwargs, evidence=evidence)
        assert batched.shown is not None and batched.details() == alone.details()
        assert [n.doc_id for n in batched.ranked] == [n.doc_id for n in alone.ranked]
    # without a stored vector (a ticket from before embeddings were stored) the text is embedded now
    context, decided, _ = items[0]
    embedded = answer_evidence_for([(context, decided, None)]).queries[context["text"]]
    assert embedded.shape == evidence.queries[context["text"]].shape
