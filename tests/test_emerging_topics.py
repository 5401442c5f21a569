"""Emerging topics: triage tickets of no known category clustered with the real embedder, named by their
distinctive terms, listed on the admin page and the API, and made a category by an admin (audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from celery import current_app
from django.test import Client
from django.utils import timezone

from inference_app.llm.types import Neighbour
from retrieval.novelty import UNKNOWN_KEY
from retrieval.services import embed_texts
from retrieval.topic_clusters import cluster_topics
from tests.ui_factories import make_category, make_suggestion, make_team, make_ticket, make_user
from tickets.models import AuditEvent, Category, Ticket, TicketStatus
from tickets.pipeline.policy import decide_category
from tickets.services.api_tokens import token_create
from tickets.services.emerging_topics import REFRESH_TASK
from tickets.topic_models import EmergingTopic

CRYPTO = [
    ("Pay with bitcoin?", "Can I pay my invoice with bitcoin instead of a card?"),
    ("Crypto payments", "Do you accept cryptocurrency such as bitcoin or ethereum for payments?"),
    ("Bitcoin at checkout", "I would like to pay in bitcoin at checkout, is crypto supported?"),
    ("Ethereum wallet payment", "Can I send the payment from my ethereum crypto wallet?"),
]
PETS = [
    ("Bringing my dog", "Can I bring my dog with me to the hotel room?"),
    ("Pets allowed?", "Are pets like dogs or cats allowed in your hotel rooms?"),
    ("Travelling with a cat", "We travel with our cat, does the hotel accept pets?"),
]
LONE = [("Office opening hours", "What time does your office in Lisbon open on Saturdays?")]


def _triage_ticket(
    subject: str, body: str, vector: np.ndarray, *, unknown: float, days_ago: float = 0
) -> Ticket:
    """A triage ticket as the pipeline leaves one: its embedding and the decision's evidence."""
    ticket = make_ticket(subject=subject, body=body, status=TicketStatus.NEEDS_TRIAGE)
    known = (1.0 - unknown) / 2
    decision = decide_category(
        neighbours=[Neighbour(doc_id=1, category="Billing", team="Billing", score=0.3, text="")],
        label_probs={"Billing": known, "Shipping": known, UNKNOWN_KEY: unknown},
        model_category=None,
    )
    suggestion = make_suggestion(ticket, confidence=decision.confidence)
    suggestion.evidence = decision.evidence
    suggestion.save(update_fields=["evidence"])
    Ticket.objects.filter(pk=ticket.pk).update(
        text_embedding=np.asarray(vector, dtype=np.float32).tobytes(),
        created_at=timezone.now() - timedelta(days=days_ago),
    )
    return ticket


@pytest.fixture
def world(db: Any, eager_celery: None) -> dict[str, Any]:
    rows = CRYPTO + PETS + LONE
    vectors = embed_texts([f"{s}\n{b}" for s, b in rows])
    crypto = [
        _triage_ticket(s, b, v, unknown=0.8, days_ago=10 if i == 0 else 1)
        for i, ((s, b), v) in enumerate(zip(CRYPTO, vectors[:4], strict=True))
    ]
    pets = [_triage_ticket(s, b, v, unknown=0.7) for (s, b), v in zip(PETS, vectors[4:7], strict=True)]
    lone = _triage_ticket(*LONE[0], vectors[7], unknown=0.9)
    # A known topic in triage only for low confidence: not an emerging topic.
    known = make_ticket(subject="Pay with bitcoin too", body=CRYPTO[0][1], status=TicketStatus.NEEDS_TRIAGE)
    Ticket.objects.filter(pk=known.pk).update(text_embedding=vectors[0].astype(np.float32).tobytes())
    make_suggestion(known, confidence=0.4)
    billing = make_team("Billing")
    agent_team = make_team("Hotel")
    make_category("Refunds", billing)
    return {
        "crypto": crypto,
        "pets": pets,
        "lone": lone,
        "known": known,
        "billing": billing,
        "hotel": agent_team,
        "admin": make_user("root", superuser=True),
        "agent": make_user("ana", teams={billing: "agent"}),
    }


def _refresh() -> list[EmergingTopic]:
    current_app.signature(REFRESH_TASK, kwargs={"days": 14}).apply_async()
    return list(EmergingTopic.objects.order_by("-size"))


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_clustering_groups_similar_tickets_and_names_them_by_their_terms() -> None:
    rows = CRYPTO + PETS + LONE
    texts = [f"{s}\n{b}" for s, b in rows]
    clusters = cluster_topics(embed_texts(texts), texts)
    assert [sorted(c.members) for c in clusters] == [[0, 1, 2, 3], [4, 5, 6]]
    assert "bitcoin" in clusters[0].terms[:2] and "crypto" in " ".join(clusters[0].terms)
    assert {"pets", "hotel", "dog"} & set(clusters[1].terms[:3])
    assert 3 <= len(clusters[0].terms) <= 4
    assert cluster_topics(np.zeros((1, 384), dtype=np.float32), ["alone"]) == []


def test_the_worker_task_clusters_unknown_topic_triage_tickets(world: dict[str, Any]) -> None:
    topics = _refresh()
    assert [t.size for t in topics] == [4, 3]
    crypto, pets = topics
    members = set(crypto.members.values_list("ticket_id", flat=True))
    assert members == {t.pk for t in world["crypto"]}  # the low-confidence known ticket is not in it
    assert "bitcoin" in crypto.terms
    assert (crypto.recent, crypto.earlier) == (3, 1)
    assert set(pets.members.values_list("ticket_id", flat=True)) == {t.pk for t in world["pets"]}
    assert len(_refresh()) == 2  # recomputed, not piled up


def test_the_admin_page_and_the_api_list_the_clusters(world: dict[str, Any]) -> None:
    _refresh()
    admin = _client(world["admin"])
    page = admin.get("/topics/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "4 tickets" in html and "3 tickets" in html and world["crypto"][1].reference in html
    assert "<script" not in html.split("</header>", 1)[1] and "style=" not in html
    response = admin.get("/api/v1/topics/emerging?days=7")
    assert response.status_code == 200
    body = response.json()
    assert [row["size"] for row in body] == [4, 3]
    first = body[0]
    assert first["recent"] == 3 and first["earlier"] == 1 and first["growth"] == 3.0
    assert len(first["examples"]) == 3 and {"reference", "subject"} <= set(first["examples"][0])
    assert "bitcoin" in first["suggested_name"] and first["category"] is None
    assert admin.get("/api/v1/topics/emerging?days=0").status_code == 400
    assert admin.get("/api/v1/topics/emerging?nope=1").status_code == 400
    for scopes, code in ((["read", "write"], 403), (["admin"], 200)):
        _, secret = token_create(name=f"ops-{code}", scopes=scopes)
        answer = Client().get("/api/v1/topics/emerging", HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert answer.status_code == code


def test_agents_are_refused(world: dict[str, Any]) -> None:
    _refresh()
    topic = EmergingTopic.objects.order_by("-size").first()
    assert topic is not None
    agent = _client(world["agent"])
    assert agent.get("/topics/").status_code == 403
    assert agent.get("/api/v1/topics/emerging").status_code == 403
    refused = agent.post(
        f"/topics/{topic.pk}/category/",
        {f"topic-{topic.pk}-name": "Crypto", f"topic-{topic.pk}-team": world["billing"].pk},
    )
    assert refused.status_code == 403
    assert not Category.objects.filter(name="Crypto").exists()
    assert Client().get("/topics/").status_code == 302  # to the sign-in page


def test_the_action_creates_the_category_reroutes_open_tickets_and_audits(world: dict[str, Any]) -> None:
    _refresh()
    topic = EmergingTopic.objects.order_by("-size").first()
    assert topic is not None
    resolved = world["crypto"][3]
    from tickets.services.lifecycle import ticket_transition

    ticket_transition(
        ticket_id=resolved.pk,
        to_status=TicketStatus.RESOLVED,
        stage=AuditEvent.Stage.AGENT,
        resolution="Not yet.",
    )
    admin = _client(world["admin"])
    prefix = f"topic-{topic.pk}"
    taken = admin.post(
        f"/topics/{topic.pk}/category/", {f"{prefix}-name": "Refunds", f"{prefix}-team": world["billing"].pk}
    )
    assert taken.status_code == 422 and "exists already" in taken.content.decode()
    done = admin.post(
        f"/topics/{topic.pk}/category/",
        {
            f"{prefix}-name": "Crypto payments",
            f"{prefix}-team": world["billing"].pk,
            f"{prefix}-reason": "new offer",
        },
    )
    assert done.status_code == 302
    category = Category.objects.get(name="Crypto payments")
    assert category.default_team == world["billing"]
    topic.refresh_from_db()
    assert topic.category == category and topic.created_by == world["admin"]
    for ticket in world["crypto"][:3]:
        ticket.refresh_from_db()
        assert (ticket.status, ticket.category, ticket.team) == (
            TicketStatus.ROUTED,
            category,
            world["billing"],
        )
        actions = list(AuditEvent.objects.filter(ticket=ticket).values_list("action", "actor", "details"))
        created = [d for a, who, d in actions if a == "topic.category_created" and who == "root"]
        assert (
            created
            and created[0]["reason"] == "new offer"
            and created[0]["category_name"] == "Crypto payments"
        )
        assert any(a == "ticket.reassigned" and "new offer" in d["reason"] for a, _, d in actions)
    resolved.refresh_from_db()
    assert (
        resolved.status == TicketStatus.RESOLVED and resolved.category is None
    )  # closed ones stay as they were
    again = admin.post(
        f"/topics/{topic.pk}/category/", {f"{prefix}-name": "Crypto 2", f"{prefix}-team": world["billing"].pk}
    )
    assert again.status_code == 422 and "already created" in again.content.decode()
    assert admin.post("/topics/99999/category/", {}).status_code == 404
