"""Reading a company's ticket history from CSV or JSONL, row by row, with reasons for every skip.

This module only parses: ``tickets.services.history_import`` writes what it yields. A malformed
row is skipped and reported with its line number; a malformed file (not UTF-8, broken CSV quoting,
missing columns) stops with :class:`ImportFileError`.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tickets.models import Priority
from tickets.services.lifecycle import MAX_BODY_CHARS, MAX_SUBJECT_CHARS

# What companies write for a priority, mapped onto ours.
PRIORITY_WORDS = {
    "low": Priority.LOW,
    "minor": Priority.LOW,
    "normal": Priority.NORMAL,
    "medium": Priority.NORMAL,
    "moderate": Priority.NORMAL,
    "high": Priority.HIGH,
    "major": Priority.HIGH,
    "urgent": Priority.URGENT,
    "critical": Priority.URGENT,
    "blocker": Priority.URGENT,
    "p1": Priority.URGENT,
    "p2": Priority.HIGH,
    "p3": Priority.NORMAL,
    "p4": Priority.LOW,
}
FORMATS = ("csv", "jsonl")


class ImportFileError(Exception):
    """The file as a whole cannot be read; nothing after the failing point is imported."""


@dataclass(frozen=True)
class ColumnMap:
    """Which column holds what. Either ``text``, or ``subject`` and/or ``body``."""

    text: str | None = None
    subject: str | None = None
    body: str | None = None
    category: str | None = None
    team: str | None = None
    priority: str | None = None
    resolution: str | None = None
    created: str | None = None
    external_id: str | None = None

    def __post_init__(self) -> None:
        if not (self.text or self.subject or self.body):
            raise ValueError("name the text column (--text-column) or the subject/body columns")
        if self.text and (self.subject or self.body):
            raise ValueError("give either a text column or subject/body columns, not both")

    def required(self) -> list[str]:
        named = [self.text, self.subject, self.body, self.category, self.team, self.priority]
        named += [self.resolution, self.created, self.external_id]
        return [column for column in named if column]


@dataclass(frozen=True)
class HistoryRow:
    line: int
    external_id: str
    subject: str
    body: str
    category: str | None
    team: str | None
    priority: str
    resolution: str
    created_at: datetime | None


@dataclass(frozen=True)
class SkippedRow:
    line: int
    reason: str


def detect_format(path: Path, explicit: str | None) -> str:
    if explicit:
        return explicit
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    raise ImportFileError(f"cannot tell the format of {path.name}: use --format csv or --format jsonl")


def read_history(
    path: Path, *, columns: ColumnMap, source: str, file_format: str | None = None
) -> Iterator[HistoryRow | SkippedRow]:
    """Yield one parsed row or one skip (with its line number) per record of the file."""
    if not path.is_file():
        raise ImportFileError(f"{path} does not exist or is not a file")
    records = (
        _csv_records(path, columns) if detect_format(path, file_format) == "csv" else _jsonl_records(path)
    )
    for line, record in records:
        if isinstance(record, str):
            yield SkippedRow(line, record)
            continue
        try:
            yield _parse_record(line, record, columns, source)
        except ValueError as exc:
            yield SkippedRow(line, str(exc))


def _open_text(path: Path) -> Any:
    return path.open(encoding="utf-8-sig", newline="")


def _csv_records(path: Path, columns: ColumnMap) -> Iterator[tuple[int, dict[str, Any] | str]]:
    csv.field_size_limit(MAX_BODY_CHARS * 20)
    with _open_text(path) as handle:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
        reader = csv.DictReader(handle, dialect=dialect)
        try:
            header = reader.fieldnames or []
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path.name}: not UTF-8 near the start ({exc.reason})") from None
        except csv.Error as exc:
            raise ImportFileError(f"{path.name}: cannot read the header: {exc}") from None
        missing = [column for column in columns.required() if column not in header]
        if missing:
            raise ImportFileError(
                f"{path.name}: no column {', '.join(map(repr, missing))}; the file has {', '.join(header)}"
            )
        line = 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"{path.name}: not UTF-8 after line {reader.line_num} ({exc.reason})"
                ) from None
            except csv.Error as exc:
                raise ImportFileError(f"{path.name}, line {reader.line_num}: {exc}") from None
            start, line = line + 1, reader.line_num
            if None in record:
                yield start, f"more fields than the header has ({len(header)})"
            else:
                yield start, record


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    with _open_text(path) as handle:
        line = 0
        while True:
            try:
                text = handle.readline()
            except UnicodeDecodeError as exc:
                raise ImportFileError(f"{path.name}: not UTF-8 after line {line} ({exc.reason})") from None
            if not text:
                return
            line += 1
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line, f"not valid JSON ({exc.msg})"
                continue
            yield line, record if isinstance(record, dict) else "not a JSON object"


def _field(record: dict[str, Any], column: str | None) -> str:
    if not column:
        return ""
    value = record.get(column)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ValueError(f"column {column!r} holds a {type(value).__name__}, not text")
    return str(value).replace("\x00", "").strip()


def _subject_from_text(text: str) -> str:
    first_line = text.splitlines()[0] if text else ""
    if len(first_line) <= 80:
        return first_line
    cut = first_line[:80].rsplit(" ", 1)[0]
    return (cut or first_line[:80]) + "..."


def _parse_created(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"created time {value[:40]!r} is not an ISO 8601 date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_record(line: int, record: dict[str, Any], columns: ColumnMap, source: str) -> HistoryRow:
    if columns.text:
        body = _field(record, columns.text)
        subject = _subject_from_text(body)
    else:
        body = _field(record, columns.body)
        subject = _field(record, columns.subject)
        if not subject:
            subject = _subject_from_text(body)
        if not body:
            body = subject
    if not body:
        raise ValueError("empty text")
    if len(body) > MAX_BODY_CHARS:
        raise ValueError(f"text longer than {MAX_BODY_CHARS} characters")
    subject = subject[:MAX_SUBJECT_CHARS]
    category = _field(record, columns.category) or None
    if columns.category and not category:
        raise ValueError(f"no category in column {columns.category!r}")
    raw_priority = _field(record, columns.priority).lower()
    priority = PRIORITY_WORDS.get(raw_priority, "") if raw_priority else ""
    if raw_priority and not priority:
        raise ValueError(f"unknown priority {raw_priority[:20]!r}")
    resolution = _field(record, columns.resolution)
    team = _field(record, columns.team) or None
    created_at = _parse_created(_field(record, columns.created))
    given_id = _field(record, columns.external_id)
    if columns.external_id and not given_id:
        raise ValueError(f"no id in column {columns.external_id!r}")
    # Without an id column the row's content is its identity, so re-importing a file adds nothing.
    identity = (
        given_id
        or hashlib.sha256(
            "\x1f".join((subject, body, category or "", team or "", resolution)).encode()
        ).hexdigest()[:24]
    )
    return HistoryRow(
        line=line,
        external_id=f"{source}:{identity}"[:200],
        subject=subject,
        body=body,
        category=category[:100] if category else None,
        team=team[:100] if team else None,
        priority=priority,
        resolution=resolution,
        created_at=created_at,
    )
