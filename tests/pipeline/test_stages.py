"""The stage table is what Celery, the models, the flow and the worker scripts use."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from inference_app.celery import app
from tickets.models import Ticket
from tickets.pipeline import flow, stages
from tickets.pipeline.stages import PipelineStage

# Stored in the database and named in deployments: these values must not change by accident.
STORED_STAGES = ["queued", "input", "model", "output", "done", "failed"]
STAGE_TASKS = {
    "tickets.pipeline_input": "ingest",
    "tickets.pipeline_model": "model",
    "tickets.pipeline_output": "output",
}


def test_the_table_keeps_the_stored_values_in_order() -> None:
    assert [row.name.value for row in stages.TABLE] == STORED_STAGES == list(PipelineStage)
    choices = Ticket._meta.get_field("stage").choices
    assert [value for value, _label in choices or []] == STORED_STAGES
    assert [row.name for row in stages.WORK_STAGES] == [
        PipelineStage.INPUT,
        PipelineStage.MODEL,
        PipelineStage.OUTPUT,
    ]
    assert stages.IN_FLIGHT == (
        PipelineStage.QUEUED,
        PipelineStage.INPUT,
        PipelineStage.MODEL,
        PipelineStage.OUTPUT,
    )
    assert PipelineStage.OUTPUT.label == "Routing"


def test_each_stage_task_is_registered_under_its_name_and_routed_to_its_queue() -> None:
    assert {row.task: row.queue for row in stages.WORK_STAGES} == STAGE_TASKS
    for task, queue in STAGE_TASKS.items():
        assert task in app.tasks
        assert app.amqp.router.route({}, task)["queue"].name == queue


def test_pipeline_queues_prints_the_worker_queue_list(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("pipeline_queues")
    assert (
        capsys.readouterr().out.strip() == f"{settings.CELERY_TASK_DEFAULT_QUEUE},ingest,model,output,shadow"
    )


@pytest.mark.parametrize("stage", [PipelineStage.INPUT, PipelineStage.MODEL, PipelineStage.OUTPUT])
def test_the_flow_enqueues_a_stage_by_name_on_its_queue(stage: PipelineStage) -> None:
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = stages.spec(stage).queue
    broker.delete(queue)
    try:
        flow.enqueue_stage(stage, 12345)
        message: Any = broker.lpop(queue)
        assert message is not None and stages.spec(stage).task.encode() in message
        assert broker.llen(queue) == 0
    finally:
        broker.delete(queue)
