"""Suggestion acceptance by answer-confidence band: did agents use the suggestions the ranker was sure of?

Counted from ``Feedback`` (accepted as is, edited, rejected) on shown suggestions (an abstention has no
reply to accept), in the bands of ``tickets.suggestion_bands``; suggestions without a calibrated
confidence have a row of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, CharField, Count, Q, QuerySet, Value, When

from tickets.analytics import Rate, _of
from tickets.models import Feedback, Ticket
from tickets.suggestion_bands import BANDS, UNCALIBRATED, Band

KINDS = (Feedback.Kind.ACCEPTED, Feedback.Kind.EDITED, Feedback.Kind.REJECTED)


@dataclass(frozen=True)
class BandAcceptance:
    band: Band
    accepted: int
    edited: int
    rejected: int

    @property
    def judged(self) -> int:
        return self.accepted + self.edited + self.rejected

    @property
    def used(self) -> Rate:
        """Accepted as is or edited, over every suggestion judged in this band."""
        return Rate(self.accepted + self.edited, self.judged)

    @property
    def as_is(self) -> Rate:
        return Rate(self.accepted, self.judged)


def acceptance_by_band(
    *, tickets: QuerySet[Ticket], since: datetime, until: datetime
) -> list[BandAcceptance]:
    """One row per band, lowest first, then the uncalibrated row; every band present, even when empty."""
    confidence = "suggestion__suggestion_confidence"
    band_key = Case(
        *[
            When(
                Q(**{f"{confidence}__gte": band.lower, f"{confidence}__lt": band.upper}), then=Value(band.key)
            )
            for band in BANDS[:-1]
        ],
        When(Q(**{f"{confidence}__gte": BANDS[-1].lower}), then=Value(BANDS[-1].key)),
        default=Value(UNCALIBRATED.key),
        output_field=CharField(),
    )
    rows = (
        _of(Feedback, tickets)
        .filter(
            created_at__gte=since,
            created_at__lt=until,
            kind__in=KINDS,
            suggestion__isnull=False,
            suggestion__abstained=False,
        )
        .annotate(band=band_key)
        .values_list("band", "kind")
        .annotate(n=Count("pk"))
    )
    counts: dict[tuple[str, str], int] = {(band, kind): n for band, kind, n in rows}
    return [
        BandAcceptance(
            band=band,
            accepted=counts.get((band.key, Feedback.Kind.ACCEPTED), 0),
            edited=counts.get((band.key, Feedback.Kind.EDITED), 0),
            rejected=counts.get((band.key, Feedback.Kind.REJECTED), 0),
        )
        for band in (*BANDS, UNCALIBRATED)
    ]
