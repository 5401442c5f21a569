"""Celery tasks behind the API: similar-ticket search and history imports. Thin: they call services.

The search runs in a worker because the knowledge base needs FAISS and the embedding model, which
the web process never imports (tests/test_web_imports.py): web processes stay small and start fast,
the index lives (and is kept in sync) only where the pipeline already keeps it.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tickets.services.import_jobs import IMPORT_JOB_TASK, import_job_run


@shared_task(name="tickets.api_search", ignore_result=False, soft_time_limit=60, time_limit=90)
def api_search(
    text: str, k: int = 5, team: str | None = None, category: str | None = None
) -> list[dict[str, Any]]:
    """The knowledge base's ``k`` best matches for ``text`` as plain dicts (id, scores, labels)."""
    from retrieval.services import kb_search

    hits = kb_search(text=text, k=k, team=team or None, category=category or None)
    return [
        {
            "ticket_id": hit.id,
            "score": hit.score,
            "dense_score": hit.dense_score,
            "lexical_score": hit.lexical_score,
            "category": hit.category,
            "team": hit.team,
        }
        for hit in hits
    ]


@shared_task(name=IMPORT_JOB_TASK, acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 60)
def run_import_job(job_id: int) -> str:
    return import_job_run(job_id=job_id).status
