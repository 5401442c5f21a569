"""A reply drafted by the model from the chosen past answers, shown only when it is grounded.

:func:`draft_grounded` asks the model (prompt ``draft-v3``) to write the reply from the best-ranked
candidates' answers and the ticket, in the customer's language, then checks it
(:mod:`inference_app.llm.grounding`). A draft that the model could not give, or that cites a ticket that
was not retrieved, or carries a number or identifier found in neither the ticket nor the cited answers,
is dropped: the outcome then has no text and says why, and the caller shows the chosen stored answer.

Plain data in and out; no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from inference_app.llm.classify import Pricing, draft_reply
from inference_app.llm.grounding import check_grounding
from inference_app.llm.types import CallRecord, ChatBackend, Neighbour

DRAFT_PROMPT = "draft-v3"
DRAFT_EXAMPLES = 3
LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
}


@dataclass(frozen=True)
class DraftOutcome:
    """A grounded draft (``text``) and what it cites, or ``fallback_reason`` with no text."""

    text: str = ""
    citations: tuple[int, ...] = ()
    fallback_reason: str = ""
    cut_off: bool = False  # the token budget cut the reply: kept up to its last complete sentence
    calls: tuple[CallRecord, ...] = field(default_factory=tuple)

    @property
    def prompt_tokens(self) -> int:
        return sum(call.prompt_tokens for call in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(call.completion_tokens for call in self.calls)

    @property
    def latency_ms(self) -> float:
        return sum(call.latency_ms for call in self.calls)

    @property
    def cost_usd(self) -> float:
        return sum(call.cost_usd for call in self.calls)


def draft_grounded(
    *,
    backend: ChatBackend,
    ticket_text: str,
    candidates: Sequence[Neighbour],
    retrieved_ids: Sequence[int],
    language: str = "",
    company: str = "the company",
    pricing: Pricing | None = None,
) -> DraftOutcome:
    """The model's reply from ``candidates`` (best first, already redacted), checked for grounding.

    ``retrieved_ids`` are every ticket retrieval returned for this one: the only ones a draft may cite.
    """
    shown = [c for c in candidates if c.resolution][:DRAFT_EXAMPLES]
    if not shown:
        return DraftOutcome(fallback_reason="no candidate answer to draft from")
    verdict = draft_reply(
        backend=backend,
        ticket_text=ticket_text,
        neighbours=shown,
        company=company,
        pricing=pricing or Pricing(),
        prompt_name=DRAFT_PROMPT,
        language=LANGUAGES.get(language, ""),
    )
    calls = tuple(verdict.calls)
    if not verdict.draft:
        return DraftOutcome(
            fallback_reason=f"the model gave no draft: {verdict.error or 'empty'}", calls=calls
        )
    cited = [c for c in shown if c.doc_id in set(verdict.draft_citations)]
    result = check_grounding(
        draft=verdict.draft,
        ticket=ticket_text,
        cited_answers=[c.resolution for c in cited],
        cited_ids=verdict.draft_citations,
        retrieved_ids=retrieved_ids,
    )
    if not verdict.draft_citations:
        return DraftOutcome(fallback_reason="the draft cites no past ticket", calls=calls)
    if not result.ok:
        return DraftOutcome(fallback_reason=f"the draft is not grounded: {result.reason}", calls=calls)
    return DraftOutcome(
        text=verdict.draft,
        citations=tuple(verdict.draft_citations),
        cut_off=verdict.draft_cut_off,
        calls=calls,
    )
