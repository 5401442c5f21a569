"""``python manage.py rebuild_index``: rebuild this machine's index files from the database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from retrieval.models import KnowledgeEntry
from retrieval.services import embedder, kb_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the FAISS and lexical index files from the knowledge entries in the database. "
        "Entries embedded by another model than EMBEDDING_MODEL are embedded again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total = KnowledgeEntry.objects.filter(deleted=False).count()
        self.stdout.write(f"Rebuilding the knowledge base index: {total} documents, model {embedder().name}")
        with tqdm(total=total, unit=" docs", desc="indexing", disable=None) as bar:

            def advance(documents: int) -> None:
                bar.update(documents)

            count = kb_rebuild(progress=advance)
        self.stdout.write(self.style.SUCCESS(f"Index rebuilt: {count} documents."))
