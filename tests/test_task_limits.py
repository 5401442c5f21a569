"""Every task of ours can be sent and runs under the limits it declares.

Celery refuses to send a task whose soft time limit exceeds its hard one (``apply_async`` raises
ValueError), and a worker kills it at the hard limit anyway: a long task that sets only
``soft_time_limit`` inherits ``CELERY_TASK_TIME_LIMIT`` (minutes) as its hard limit."""

from __future__ import annotations

from inference_app.celery import app


def test_no_task_has_a_soft_time_limit_above_its_hard_one() -> None:
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.startswith(("tickets.", "retrieval."))}
    assert "tickets.retrain_answer_ranker" in ours and "tickets.retrain_decision_model" in ours
    for name, task in ours.items():
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft is None or hard is None or soft <= hard, f"{name}: soft {soft} s > hard {hard} s"
