"""``python manage.py import_tickets FILE``: import a company's resolved history (CSV or JSONL)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from tickets.services.history_files import FORMATS, ColumnMap
from tickets.services.history_import import history_import


def read_team_map(path: Path) -> dict[str, str]:
    """category -> team, from a JSON object or a two-column CSV (category,team)."""
    try:
        if path.suffix.lower() == ".json":
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
                raise CommandError(f"{path}: expected a JSON object of category -> team name")
            return {str(key): value for key, value in loaded.items()}
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return {
                row[0].strip(): row[1].strip()
                for row in csv.reader(handle)
                if len(row) >= 2 and row[0].strip()
            }
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise CommandError(f"cannot read the team map {path}: {exc}") from None


def add_column_arguments(parser: CommandParser) -> None:
    """The options that say which column holds what (shared with ``evaluate``)."""
    parser.add_argument("--text-column", help="One column with the whole ticket text.")
    parser.add_argument("--subject-column")
    parser.add_argument("--body-column")
    parser.add_argument("--category-column", "--label-column", dest="category_column")
    parser.add_argument("--team-column")
    parser.add_argument("--priority-column")
    parser.add_argument("--resolution-column")
    parser.add_argument("--team-map", type=Path, help="JSON object or CSV mapping category -> team.")


def columns_from_options(options: dict[str, Any]) -> tuple[ColumnMap, dict[str, str]]:
    """The column map and the category -> team map those options name."""
    try:
        columns = ColumnMap(
            text=options["text_column"],
            subject=options["subject_column"],
            body=options["body_column"],
            category=options["category_column"],
            team=options["team_column"],
            priority=options["priority_column"],
            resolution=options["resolution_column"],
            created=options.get("created_column"),
            external_id=options.get("id_column"),
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    team_map = read_team_map(options["team_map"]) if options["team_map"] else {}
    return columns, team_map


class Command(BaseCommand):
    help = (
        "Import resolved history from CSV or JSONL into tickets and the knowledge base. "
        "Re-running with the same file adds nothing; malformed rows are skipped and listed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=FORMATS, help="Default: from the file's extension.")
        add_column_arguments(parser)
        parser.add_argument("--created-column", help="ISO 8601 creation time.")
        parser.add_argument("--id-column", help="The helpdesk's ticket id (default: the row's content).")
        parser.add_argument(
            "--source", help="Name for this history, part of each ticket's id (default: file name)."
        )
        parser.add_argument("--limit", type=int, help="Import at most this many rows.")
        parser.add_argument("--batch-size", type=int, default=512)
        parser.add_argument(
            "--processes", type=int, default=1, help="Embed in this many processes (one thread each)."
        )
        parser.add_argument("--no-index", action="store_true", help="Skip the knowledge base (no embedding).")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        columns, team_map = columns_from_options(options)
        with tqdm(desc=f"importing {path.name}", unit=" rows", total=options["limit"], disable=None) as bar:

            def advance(rows: int) -> None:
                bar.update(rows)

            summary = history_import(
                path=path,
                columns=columns,
                source=options["source"] or path.stem,
                file_format=options["format"],
                team_map=team_map,
                limit=options["limit"],
                batch_size=options["batch_size"],
                index=not options["no_index"],
                processes=max(1, options["processes"]),
                progress=advance,
            )
        self.stdout.write(
            f"{summary.rows} rows read: {summary.imported} imported, "
            f"{summary.already_present} already present, {len(summary.skipped)} skipped."
        )
        if summary.categories_created:
            self.stdout.write(f"New categories: {', '.join(summary.categories_created)}")
        if summary.teams_created:
            self.stdout.write(f"New teams: {', '.join(summary.teams_created)}")
        if summary.skipped:
            reasons = Counter(skip.reason for skip in summary.skipped)
            for reason, count in reasons.most_common():
                lines = [str(skip.line) for skip in summary.skipped if skip.reason == reason]
                shown = ", ".join(lines[:10]) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")
                self.stdout.write(f"  skipped {count}: {reason} (line {shown})")
        if summary.error:
            raise CommandError(f"stopped: {summary.error}. The {summary.imported} rows imported before stay.")
        self.stdout.write(self.style.SUCCESS("Import finished."))
