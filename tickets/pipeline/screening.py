"""Prompt-injection screening of a ticket before it becomes evidence, and the policy for a flagged one.

A flagged ticket's injected passages never count as evidence: the text redaction, the lexical (BM25)
query, the embedding, the label model and the model all get is the text without them, so the label
names an injection orders do not steer retrieval. What happens next is ``settings.INJECTION_POLICY``:

- ``"triage"`` (default): the ticket goes to a person whatever the decision's confidence, since the
  part that was removed could have been chosen to shape what is left;
- ``"clean_part"``: the ticket is decided and routed like any other on the clean part.

When nothing is left after the injected passages are removed, the full (redacted) text is used and the
ticket goes to triage under either policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from inference_app.llm.injection import InjectionSignal, detect_injection
from tickets.models import Category, Team

_MAX_SPAN_CHARS = 200


@dataclass(frozen=True)
class Screened:
    evidence_text: str  # what redaction, retrieval, the label model and the model get
    signal: InjectionSignal
    policy: str  # "" when not flagged, else "triage" or "clean_part"

    def details(self) -> dict[str, Any]:
        """For the audit event: the flag, its reasons, the injected passages and the policy applied."""
        return {
            "injection_suspected": self.signal.suspected,
            "injection_reasons": list(self.signal.reasons),
            "injection_spans": [
                {"start": s.start, "end": s.end, "reasons": list(s.reasons), "text": s.text[:_MAX_SPAN_CHARS]}
                for s in self.signal.spans
            ],
            "injection_policy": self.policy,
        }


def taxonomy_labels() -> tuple[str, ...]:
    """The company's category and team names, which an injection may order by name."""
    categories = Category.objects.values_list("name", flat=True)
    teams = Team.objects.values_list("name", flat=True)
    return tuple(dict.fromkeys([*categories, *teams]))


def screen(text: str, *, labels: tuple[str, ...]) -> Screened:
    signal = detect_injection(text, labels=labels)
    if not signal.suspected:
        return Screened(evidence_text=text, signal=signal, policy="")
    clean = signal.clean_text()
    if not clean:
        return Screened(evidence_text=text, signal=signal, policy="triage")
    return Screened(evidence_text=clean, signal=signal, policy=settings.INJECTION_POLICY)


def triage_reason(context: Mapping[str, Any]) -> str:
    """Why routing must send the ticket to a person because of an injection ("" when it need not)."""
    if not context.get("injection"):
        return ""
    # a context written before the policy was recorded counts as the safe default
    if context.get("injection_policy", "triage") != "triage":
        return ""
    return "suspected prompt injection: " + ", ".join(context.get("injection_reasons") or ["flagged"])
