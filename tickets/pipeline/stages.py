"""The pipeline's stages, in one table: everything else reads it.

Each stage a ticket passes through has a row: its name (the value of ``Ticket.stage``), its label,
and, for the three that do work, the Celery queue its task runs on, the task's name, the stage that
follows, and the audit-trail stage its events are filed under. Read from here:

- ``tickets.models``: the choices of ``Ticket.stage`` (:data:`CHOICES`);
- ``inference_app/settings.py``: ``CELERY_TASK_ROUTES`` (:data:`TASK_ROUTES`), and through it
  ``inference_app.metrics``' queue list;
- ``tickets/tasks.py``: the stage tasks' names; ``tickets.pipeline.flow``: what follows what, which
  task to enqueue (by name), which stages are in flight;
- ``manage.py pipeline_queues``: the ``--queues`` list a worker needs (``scripts/demo.sh``,
  ``benchmarks/bench_pipeline.py``, the tests that start workers).

To add a stage: add a member to :class:`PipelineStage` and a row to :data:`TABLE` (in order), write
its ``run_<name>`` in ``tickets.pipeline.flow`` (claim, work, advance, enqueue the next) and its task
in ``tickets/tasks.py`` under the row's task name. Values are stored in the database: renaming one needs
a data migration.

Plain data only: the settings import this module, so it must not import Django (or anything that does).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PipelineStage(StrEnum):
    """Where a ticket is in the pipeline; ``done`` once it left the output stage."""

    QUEUED = "queued"
    INPUT = "input"
    MODEL = "model"
    OUTPUT = "output"
    DONE = "done"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return spec(self).label


@dataclass(frozen=True)
class StageRow:
    name: PipelineStage
    label: str
    queue: str = ""
    """The Celery queue of the stage's task ("" for the states no task works on)."""
    task: str = ""
    """The Celery task's name (what is enqueued, by name)."""
    next: PipelineStage | None = None
    audit_stage: str = ""
    """The audit-trail stage (``AuditEvent.Stage``) of the status change the stage makes."""


TABLE: tuple[StageRow, ...] = (
    StageRow(PipelineStage.QUEUED, "Queued", next=PipelineStage.INPUT),
    StageRow(
        PipelineStage.INPUT,
        "Input processing",
        queue="ingest",
        task="tickets.pipeline_input",
        next=PipelineStage.MODEL,
        audit_stage="input",
    ),
    StageRow(
        PipelineStage.MODEL,
        "Model",
        queue="model",
        task="tickets.pipeline_model",
        next=PipelineStage.OUTPUT,
        audit_stage="model",
    ),
    StageRow(
        PipelineStage.OUTPUT,
        "Routing",
        queue="output",
        task="tickets.pipeline_output",
        next=PipelineStage.DONE,
        audit_stage="routing",
    ),
    StageRow(PipelineStage.DONE, "Done"),
    StageRow(PipelineStage.FAILED, "Failed"),
)

_BY_NAME = {row.name: row for row in TABLE}
WORK_STAGES: tuple[StageRow, ...] = tuple(row for row in TABLE if row.task)
"""The stages a task works on, in order."""
FIRST: PipelineStage = WORK_STAGES[0].name
IN_FLIGHT: tuple[PipelineStage, ...] = tuple(row.name for row in TABLE if row.next is not None)
"""Stages a ticket still has to leave: waiting to start, or waiting for / in a stage's task."""
CHOICES: list[tuple[str, str]] = [(row.name.value, row.label) for row in TABLE]
SHADOW_QUEUE = "shadow"
SHADOW_TASK = "tickets.shadow_decide"
"""A shadow candidate's decision of a ticket the active version decided: off the ticket's own path,
on its own queue, so shadowing never delays a live decision (``tickets.pipeline.shadowing``)."""
TASK_ROUTES: dict[str, dict[str, str]] = {
    **{row.task: {"queue": row.queue} for row in WORK_STAGES},
    SHADOW_TASK: {"queue": SHADOW_QUEUE},
}
"""``CELERY_TASK_ROUTES`` of the stage tasks (each on its stage's own queue) and the shadow task."""
QUEUES: tuple[str, ...] = (*(row.queue for row in WORK_STAGES), SHADOW_QUEUE)


def spec(stage: str) -> StageRow:
    """The row of ``stage`` (a :class:`PipelineStage` or its value)."""
    return _BY_NAME[PipelineStage(stage)]


def worker_queues(default_queue: str) -> list[str]:
    """Every queue a worker that runs the whole pipeline consumes: the default one (knowledge sync,
    webhooks, API jobs), the stages' queues in the order of the table, and the shadow queue."""
    return [default_queue, *(queue for queue in QUEUES if queue != default_queue)]
