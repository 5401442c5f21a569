"""The knowledge base's source of truth, in the database every machine shares.

Each row is one searchable document (a resolved ticket), with its embedding, so a machine that starts
(or whose index files are stale) rebuilds its local FAISS and lexical indexes from here without
re-embedding, and running processes catch up by reading the rows whose ``version`` is newer than
what they have applied. Removals stay as tombstones so they reach every machine too.
"""

from __future__ import annotations

from django.db import models


class KnowledgeEntry(models.Model):
    doc_id = models.BigIntegerField(unique=True, help_text="The resolved ticket's id.")
    text = models.TextField(blank=True)
    category = models.CharField(max_length=200, blank=True)
    team = models.CharField(max_length=200, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    embedding = models.BinaryField(null=True, blank=True, help_text="float32 vector, little-endian.")
    embedding_model = models.CharField(max_length=200, blank=True)
    answer_embedding = models.BinaryField(
        null=True,
        blank=True,
        help_text="float32 vector of the ticket's answer (same model as ``embedding``); empty without one.",
    )
    deleted = models.BooleanField(default=False)
    version = models.BigIntegerField(unique=True, help_text="Grows with every change, in commit order.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "knowledge entries"

    def __str__(self) -> str:
        return f"doc {self.doc_id} v{self.version}{' (deleted)' if self.deleted else ''}"
