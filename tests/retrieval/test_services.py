"""The knowledge base as processes share it: the database is the truth, index files are a cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from retrieval import services
from retrieval.models import KnowledgeEntry
from retrieval.services import (
    KBItem,
    kb_rebuild,
    kb_remove,
    kb_reset_local,
    kb_search,
    kb_upsert,
    knowledge_base,
)
from tests.conftest import run_python

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_dir")]

DOCS = [
    KBItem(doc_id=1, text="Refund the duplicate charge on my credit card", category="Refund", team="Billing"),
    KBItem(doc_id=2, text="VPN client fails with error 809 from home", category="VPN", team="IT"),
    KBItem(doc_id=3, text="Laptop screen flickers on the docking station", category="Hardware", team="IT"),
]


def test_versions_grow_with_every_change_and_removals_leave_tombstones() -> None:
    kb_upsert(items=DOCS)
    kb_upsert(items=[KBItem(doc_id=2, text="VPN error 809 again", category="VPN", team="IT")])
    kb_remove(doc_ids=[3])
    rows = {row.doc_id: row for row in KnowledgeEntry.objects.all()}
    assert [rows[1].version, rows[2].version, rows[3].version] == [1, 4, 5]
    assert rows[3].deleted and rows[3].embedding is None
    assert rows[1].embedding is not None and len(bytes(rows[1].embedding)) == 384 * 4


def test_a_corrupt_index_file_is_rebuilt_from_the_database(knowledge_dir: Path) -> None:
    kb_upsert(items=DOCS)
    kb_rebuild()
    assert (knowledge_dir / "manifest.json").is_file()
    for path in knowledge_dir.iterdir():
        if path.suffix == ".idx" and "vector" in path.name:
            path.write_bytes(path.read_bytes()[:100])
    kb_reset_local()
    [hit] = kb_search(text="my vpn says error 809", k=1)
    assert hit.id == 2
    assert len(knowledge_base()) == 3


def test_an_index_made_by_another_model_is_rebuilt_not_mixed(knowledge_dir: Path) -> None:
    kb_upsert(items=DOCS)
    kb_rebuild()
    manifest_path = knowledge_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["embedder"]["name"] == settings.EMBEDDING_MODEL
    manifest["embedder"]["name"] = "some-other-model"
    manifest_path.write_text(json.dumps(manifest))
    kb_reset_local()
    assert len(knowledge_base()) == 3
    assert "some-other-model" not in manifest_path.read_text()


def test_entries_of_another_model_are_embedded_again_on_rebuild() -> None:
    kb_upsert(items=DOCS)
    KnowledgeEntry.objects.filter(doc_id=1).update(embedding_model="old-model", embedding=b"\x00" * 16)
    kb_rebuild()
    [hit] = kb_search(text="refund my duplicate card charge", k=1)
    assert hit.id == 1 and hit.dense_score is not None and hit.dense_score > 0.5


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_change_written_by_another_process_is_seen_without_a_rebuild(tmp_path: Path) -> None:
    kb_upsert(items=DOCS)
    before = {hit.id for hit in kb_search(text="the office printer jams on tray two", k=3)}
    assert 4 not in before
    db = connection.settings_dict
    env: dict[str, str] = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "INDEX_DIR": str(tmp_path / "other-machine-index"),
        "DJANGO_SETTINGS_MODULE": "inference_app.settings",
    }
    writer = (
        "import django; django.setup()\n"
        "from retrieval.services import KBItem, kb_upsert\n"
        "kb_upsert(items=[KBItem(doc_id=4, text='Office printer jams on tray 2 every morning',"
        " category='Printing', team='IT')])\n"
    )
    result = run_python(writer, env=env)
    assert result.returncode == 0, result.stderr
    knowledge_base(force_sync=True)
    [best, *_] = kb_search(text="the office printer jams on tray two", k=3)
    assert (best.id, best.category) == (4, "Printing")
    assert services._local.synced_version == 4
