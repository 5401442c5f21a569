"""Importing history into tickets and the knowledge base, with the real model and FAISS."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from retrieval.models import KnowledgeEntry
from tickets.models import AuditEvent, Category, Channel, Team, Ticket, TicketStatus
from tickets.services.history_files import ColumnMap
from tickets.services.history_import import history_import
from tickets.services.knowledge import similar_resolved_tickets

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_dir")]

HISTORY = [
    (
        "VPN drops every few minutes",
        "The VPN client disconnects constantly from home Wi-Fi.",
        "Network",
        "Reinstalled the VPN client profile.",
    ),
    (
        "Cannot reach VPN gateway",
        "Error 809 when connecting to the office VPN.",
        "Network",
        "Opened UDP 500/4500 on the home router.",
    ),
    (
        "Wi-Fi in meeting room",
        "Meeting room B has no wireless signal at all.",
        "Network",
        "Replaced the access point in room B.",
    ),
    (
        "Laptop will not boot",
        "My laptop shows a black screen after the logo.",
        "Hardware",
        "Reseated the RAM and updated the BIOS.",
    ),
    (
        "Broken keyboard",
        "Several keys on my keyboard stopped working after a spill.",
        "Hardware",
        "Replaced the keyboard.",
    ),
    (
        "Monitor flickers",
        "The external monitor flickers when on the docking station.",
        "Hardware",
        "Swapped the DisplayPort cable.",
    ),
    (
        "Password expired",
        "My password expired while I was on holiday and I am locked out.",
        "Access",
        "Reset the password.",
    ),
    (
        "Need access to finance share",
        "Please grant me read access to the finance shared drive.",
        "Access",
        "Added to the finance group.",
    ),
    (
        "Account locked after MFA",
        "My account is locked after too many MFA attempts.",
        "Access",
        "Unlocked the account.",
    ),
]


def _write_history(path: Path, rows: list[tuple[str, str, str, str]] = HISTORY) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "body", "topic", "fix"])
        writer.writerows(rows)
    return path


COLUMNS = ColumnMap(subject="subject", body="body", category="topic", resolution="fix")


def test_import_creates_resolved_tickets_labels_and_knowledge(tmp_path: Path) -> None:
    path = _write_history(tmp_path / "it.csv")
    summary = history_import(path=path, columns=COLUMNS, source="it", team_map={"Access": "Identity"})
    assert (summary.rows, summary.imported, summary.already_present, summary.skipped) == (9, 9, 0, [])
    assert sorted(summary.categories_created) == ["Access", "Hardware", "Network"]
    assert Category.objects.get(name="Access").default_team.name == "Identity"
    assert Category.objects.get(name="Network").default_team.name == "Network"
    tickets = Ticket.objects.filter(channel=Channel.IMPORT)
    assert tickets.count() == 9 and not tickets.exclude(status=TicketStatus.RESOLVED).exists()
    assert set(tickets.values_list("language", flat=True)) == {"en"}  # what the language rule counts
    assert AuditEvent.objects.filter(action="ticket.imported").count() == 9
    assert KnowledgeEntry.objects.filter(deleted=False).count() == 9

    similar = similar_resolved_tickets(text="my vpn connection keeps dropping out", k=3)
    assert [hit.category for hit in similar[:2]] == ["Network", "Network"]
    assert similar[0].resolution in {row[3] for row in HISTORY}
    assert similar[0].similarity is None or 0 < similar[0].similarity <= 1.0001

    filtered = similar_resolved_tickets(text="my vpn connection keeps dropping out", k=3, category="Hardware")
    assert filtered and {hit.category for hit in filtered} == {"Hardware"}

    again = history_import(path=path, columns=COLUMNS, source="it")
    assert (again.imported, again.already_present) == (0, 9)
    assert Ticket.objects.count() == 9 and KnowledgeEntry.objects.count() == 9


def test_a_file_that_breaks_midway_keeps_the_batches_before_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    good = io.StringIO()
    writer = csv.writer(good)
    writer.writerow(["text", "label"])
    for number in range(400):
        writer.writerow(
            [f"Ticket number {number} about a printer that jams on tray {number % 3}", "Printing"]
        )
    path.write_bytes(good.getvalue().encode() + "caf\u00e9,Printing\n".encode("latin-1"))
    summary = history_import(
        path=path, columns=ColumnMap(text="text", category="label"), source="b", batch_size=100
    )
    assert summary.error is not None and "not UTF-8" in summary.error
    assert summary.imported >= 300
    assert Ticket.objects.count() == summary.imported == KnowledgeEntry.objects.count()


def test_import_command_reports_skips_and_stops_on_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write_history(tmp_path / "h.csv", [*HISTORY[:3], ("", "", "Network", ""), ("x", "y", "", "")])
    call_command(
        "import_tickets",
        str(path),
        "--subject-column",
        "subject",
        "--body-column",
        "body",
        "--label-column",
        "topic",
        "--resolution-column",
        "fix",
        "--no-index",
    )
    out = capsys.readouterr().out
    assert "5 rows read: 3 imported, 0 already present, 2 skipped." in out
    assert "skipped 1: empty text (line 5)" in out
    assert "skipped 1: no category in column 'topic' (line 6)" in out
    with pytest.raises(CommandError, match="no column 'nope'"):
        call_command("import_tickets", str(path), "--text-column", "nope")
    with pytest.raises(CommandError, match="text column"):
        call_command("import_tickets", str(path), "--label-column", "topic")


def test_bitext_dataset_imports_with_its_columns(shared_data: Path) -> None:
    path = shared_data / "bitext-customer-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    summary = history_import(
        path=path,
        columns=ColumnMap(text="instruction", category="intent", team="category", resolution="response"),
        source="bitext",
        limit=120,
        index=False,
    )
    assert summary.rows == 120 and summary.imported + summary.already_present == 120
    assert summary.skipped == []
    ticket = Ticket.objects.filter(channel=Channel.IMPORT).exclude(resolution="").first()
    assert ticket is not None and ticket.category is not None and ticket.team is not None
    assert Team.objects.filter(name="ORDER").exists()


def test_it_service_tickets_dataset_imports_with_its_columns(shared_data: Path) -> None:
    path = shared_data / "it-service-tickets" / "all_tickets_processed_improved_v3.csv"
    summary = history_import(
        path=path, columns=ColumnMap(text="Document", category="Topic_group"), source="it", limit=300
    )
    assert summary.rows == 300 and summary.imported == 300 and summary.error is None
    assert set(summary.categories_created) <= {
        "Hardware",
        "HR Support",
        "Access",
        "Miscellaneous",
        "Storage",
        "Purchase",
        "Internal Project",
        "Administrative rights",
    }
    assert KnowledgeEntry.objects.count() == 300


@pytest.mark.slow
def test_embedding_in_two_processes_gives_the_same_knowledge(tmp_path: Path) -> None:
    import numpy as np

    from retrieval.services import embed_texts

    path = _write_history(tmp_path / "it.csv")
    summary = history_import(path=path, columns=COLUMNS, source="it", processes=2, batch_size=4)
    assert summary.imported == len(HISTORY)
    entries = list(KnowledgeEntry.objects.order_by("doc_id"))
    stored = np.stack([np.frombuffer(bytes(entry.embedding or b""), dtype="<f4") for entry in entries])
    fresh = embed_texts([entry.text for entry in entries])
    # The int8 backend quantises activations per batch, so batch neighbours nudge a vector slightly.
    cosines = np.sum(stored * fresh, axis=1)
    assert cosines.min() > 0.98
    assert [hit.category for hit in similar_resolved_tickets(text="vpn keeps dropping", k=1)] == ["Network"]
