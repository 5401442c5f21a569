"""Parsing history files: column options, line numbers, bad rows and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickets.services.history_files import ColumnMap, HistoryRow, ImportFileError, SkippedRow, read_history


def _rows(path: Path, columns: ColumnMap, **kwargs: str) -> list[HistoryRow | SkippedRow]:
    return list(read_history(path, columns=columns, source="acme", **kwargs))


def test_csv_with_subject_body_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "id,title,description,topic,queue,prio,answer,opened\n"
        '7,VPN down,"Cannot connect,\nerror 809",Network,IT,High,Restarted the gateway,2024-03-01T10:00:00Z\n'
        "8,,Printer jams on tray 2,Hardware,IT,medium,,2024-03-02\n",
        encoding="utf-8",
    )
    columns = ColumnMap(
        subject="title",
        body="description",
        category="topic",
        team="queue",
        priority="prio",
        resolution="answer",
        created="opened",
        external_id="id",
    )
    first, second = _rows(path, columns)
    assert isinstance(first, HistoryRow) and isinstance(second, HistoryRow)
    assert (first.line, first.external_id, first.subject) == (2, "acme:7", "VPN down")
    assert first.body == "Cannot connect,\nerror 809"
    assert (first.category, first.team, first.priority) == ("Network", "IT", "high")
    assert first.created_at is not None and first.created_at.isoformat() == "2024-03-01T10:00:00+00:00"
    # A multi-line record moves the next record's line number along.
    assert second.line == 4
    assert (second.subject, second.priority, second.resolution) == ("Printer jams on tray 2", "normal", "")


def test_text_column_gives_a_short_subject_and_a_content_based_id(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    long_text = "My laptop battery drains within an hour even when idle " * 3
    path.write_text(f"text,label\n{long_text},Hardware\n{long_text},Hardware\n", encoding="utf-8")
    first, second = _rows(path, ColumnMap(text="text", category="label"))
    assert isinstance(first, HistoryRow) and isinstance(second, HistoryRow)
    assert len(first.subject) <= 83 and first.subject.endswith("...")
    assert first.body == long_text.strip()
    assert first.external_id == second.external_id  # same content, same identity


def test_bad_rows_are_skipped_with_line_numbers_and_reasons(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "text,label,prio,when\n"
        "fine ticket,A,low,2024-01-01\n"
        ",A,low,\n"
        "no label,,low,\n"
        "odd priority,A,whenever,\n"
        "bad date,A,,yesterday\n"
        "too,many,fields,here,extra\n",
        encoding="utf-8",
    )
    rows = _rows(path, ColumnMap(text="text", category="label", priority="prio", created="when"))
    assert [type(row).__name__ for row in rows] == ["HistoryRow"] + ["SkippedRow"] * 5
    reasons = {row.line: row.reason for row in rows if isinstance(row, SkippedRow)}
    assert reasons[3] == "empty text"
    assert reasons[4] == "no category in column 'label'"
    assert reasons[5] == "unknown priority 'whenever'"
    assert reasons[6].startswith("created time 'yesterday' is not")
    assert reasons[7].startswith("more fields than the header")


def test_missing_column_stops_with_the_columns_the_file_has(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("body,topic\nx,y\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"no column 'label'; the file has body, topic"):
        _rows(path, ColumnMap(text="body", category="label"))


def test_file_that_is_not_utf8_stops_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,label\n" + b"fine,A\n" * 5000 + "caf\u00e9 au lait,B\n".encode("latin-1"))
    rows: list[HistoryRow | SkippedRow] = []
    with pytest.raises(ImportFileError, match="not UTF-8"):
        for row in read_history(path, columns=ColumnMap(text="text", category="label"), source="s"):
            rows.append(row)
    assert len(rows) > 1000  # the good rows before the bad byte were read


def test_jsonl_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    lines = [
        json.dumps({"text": "Reset my password please", "label": "Access"}),
        "{not json",
        "",
        json.dumps(["a", "list"]),
        json.dumps({"text": {"nested": 1}, "label": "Access"}),
        json.dumps({"text": "Screen flickers", "label": "Hardware"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = _rows(path, ColumnMap(text="text", category="label"))
    summary = [(row.line, row.reason if isinstance(row, SkippedRow) else row.category) for row in rows]
    assert summary == [
        (1, "Access"),
        (2, "not valid JSON (Expecting property name enclosed in double quotes)"),
        (4, "not a JSON object"),
        (5, "column 'text' holds a dict, not text"),
        (6, "Hardware"),
    ]


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "h.xlsx"
    odd.write_text("x")
    with pytest.raises(ImportFileError, match="--format"):
        _rows(odd, ColumnMap(text="t"))
    with pytest.raises(ImportFileError, match="does not exist"):
        _rows(tmp_path / "nope.csv", ColumnMap(text="t"))


def test_column_map_needs_text_or_subject_body() -> None:
    with pytest.raises(ValueError, match="text column"):
        ColumnMap(category="c")
    with pytest.raises(ValueError, match="not both"):
        ColumnMap(text="t", body="b")
