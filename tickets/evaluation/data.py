"""Reading HISTORY and TEST files with the import's column options, into plain evaluation rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tickets.services.history_files import ColumnMap, ImportFileError, SkippedRow, read_history
from tickets.services.knowledge import document_text


class EvaluationInputError(Exception):
    """A HISTORY or TEST file cannot be used (unreadable, no labels, too few rows)."""


@dataclass(frozen=True)
class EvalTicket:
    line: int
    text: str
    category: str
    team: str | None
    resolution: str
    priority: str


@dataclass(frozen=True)
class EvalRows:
    tickets: list[EvalTicket]
    skipped: list[SkippedRow]


def read_rows(
    path: Path,
    *,
    columns: ColumnMap,
    team_map: Mapping[str, str],
    file_format: str | None = None,
    limit: int | None = None,
) -> EvalRows:
    """Labelled rows of ``path`` (at most ``limit``); rows without a label are skipped with a reason."""
    if not columns.category:
        raise EvaluationInputError("name the label column (--label-column): evaluation needs the true labels")
    tickets: list[EvalTicket] = []
    skipped: list[SkippedRow] = []
    try:
        for item in read_history(path, columns=columns, source=path.stem, file_format=file_format):
            if limit is not None and len(tickets) >= limit:
                break
            if isinstance(item, SkippedRow):
                skipped.append(item)
                continue
            assert item.category is not None  # read_history skips rows without one when a column is named
            tickets.append(
                EvalTicket(
                    line=item.line,
                    text=document_text(item.subject, item.body),
                    category=item.category,
                    team=team_map.get(item.category) or item.team,
                    resolution=item.resolution,
                    priority=item.priority,
                )
            )
    except ImportFileError as exc:
        raise EvaluationInputError(str(exc)) from None
    return EvalRows(tickets, skipped)


def team_of_category(tickets: list[EvalTicket], team_map: Mapping[str, str]) -> dict[str, str]:
    """Each category's team: the team map's, else the team most of its history tickets went to."""
    counts: dict[str, dict[str, int]] = {}
    for ticket in tickets:
        if ticket.team:
            per_team = counts.setdefault(ticket.category, {})
            per_team[ticket.team] = per_team.get(ticket.team, 0) + 1
    teams = {category: max(per_team, key=lambda t: (per_team[t], t)) for category, per_team in counts.items()}
    teams.update(team_map)
    return teams
