"""Confidence bands of the answer suggestion, shared by the ticket page, the API and the analytics page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    key: str
    name: str  # what the ticket page shows
    label: str  # the range, as the analytics page shows it
    lower: float  # inclusive
    upper: float  # exclusive, except the last band's 1.0


BANDS: tuple[Band, ...] = (
    Band("low", "low", "< 0.5", 0.0, 0.5),
    Band("medium", "medium", "0.5-0.7", 0.5, 0.7),
    Band("high", "high", "0.7-0.9", 0.7, 0.9),
    Band("very_high", "very high", "≥ 0.9", 0.9, 1.0),
)
UNCALIBRATED = Band("uncalibrated", "uncalibrated", "uncalibrated", 0.0, 0.0)


def band_of(confidence: float | None) -> Band:
    """The band a suggestion confidence falls in; ``UNCALIBRATED`` when there is none."""
    if confidence is None:
        return UNCALIBRATED
    for band in BANDS:
        if confidence < band.upper:
            return band
    return BANDS[-1]
