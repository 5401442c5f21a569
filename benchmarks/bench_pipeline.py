"""End-to-end pipeline throughput and latency on real Celery workers, PostgreSQL and Redis.

A fresh database gets the demo company (360 resolved tickets in the knowledge base); then tickets
written from the demo's problem templates are submitted, either all at once (throughput: tickets per
minute from submission to routed) or at a steady offered rate (latency p50/p95 from submission to
routed). Run it for each configuration you want to compare:

    python benchmarks/bench_pipeline.py --use-model never --tickets 1000            # retrieval only
    python benchmarks/bench_pipeline.py --use-model auto --tickets 300              # the default
    python benchmarks/bench_pipeline.py --use-model auto --rate 0.5 --seconds 60    # latency
    python benchmarks/bench_pipeline.py --use-model never --batch-size 1 --tickets 300  # naive: no batching
    python benchmarks/bench_pipeline.py --embedded --use-model never --rate 1 --seconds 60 --workers 1
        # the embedded default (make demo): SQLite and the filesystem broker, one worker
    python benchmarks/bench_pipeline.py --use-model never --versions --tickets 300  # an active version
    python benchmarks/bench_pipeline.py --use-model never --shadow --tickets 300    # and a shadow

``--versions`` registers the demo's label model as the active version (the model registry's path);
``--shadow`` adds a second label model (fitted without the newest 30% of history) in shadow, so every
ticket is also decided on the ``shadow`` queue, by the same workers, or with ``--shadow-worker`` by one
more worker of that queue alone at the lowest CPU priority (as a deployment gives the queue to
worker-shadow): compare. A worker of the shadow queue alone holds shadow decisions while live tickets
wait (``MODEL_SHADOW_MAX_DEFER_SECONDS``, default 300; 0 decides at once, as before): after the burst
the run prints how many shadow decisions were stored when the last live ticket was final, and how long
after that the last one was stored:

    python benchmarks/bench_pipeline.py --use-model never --shadow --shadow-worker --tickets 600
    MODEL_SHADOW_MAX_DEFER_SECONDS=0 python benchmarks/bench_pipeline.py --use-model never --shadow \
        --shadow-worker --tickets 600    # shadow decisions as they come

After the run, the workers' CPU use while idle is printed (the broker's polling cost).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("BENCH_PIPELINE_DB", "switchboard_bench_pipeline")
REDIS_DB = os.environ.get("BENCH_PIPELINE_REDIS_DB", "13")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--use-model", choices=("never", "auto", "always"), default="auto")
    parser.add_argument("--tickets", type=int, default=300, help="burst size (throughput run)")
    parser.add_argument("--rate", type=float, default=0.0, help="tickets per second offered (latency run)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the latency run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one thread each)")
    parser.add_argument("--batch-size", type=int, default=16, help="PIPELINE_BATCH_SIZE")
    parser.add_argument("--backend", choices=("llamacpp", "openai"), default="llamacpp")
    parser.add_argument("--base-url", default="", help="LLM_BASE_URL for --backend openai")
    parser.add_argument(
        "--embedded", action="store_true", help="SQLite and the filesystem broker (make demo) instead"
    )
    parser.add_argument("--versions", action="store_true", help="an active label model version")
    parser.add_argument("--shadow", action="store_true", help="--versions and a shadow candidate")
    parser.add_argument(
        "--shadow-worker", action="store_true", help="the shadow queue on one more worker, at nice 19"
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="sb-bench-pipeline-"))
    if args.embedded:
        for key in [k for k in os.environ if k.startswith(("DATABASE_", "REDIS_", "CELERY_BROKER"))]:
            if key != "CELERY_FILESYSTEM_POLL_SECONDS":
                del os.environ[key]
    env = {
        "DJANGO_SETTINGS_MODULE": "inference_app.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "PIPELINE_USE_MODEL": args.use_model,
        "PIPELINE_BATCH_SIZE": str(args.batch_size),
        "LLM_BACKEND": args.backend,
        "LOG_LEVEL": "warning",
    }
    if args.base_url:
        env["LLM_BASE_URL"] = args.base_url
    if args.embedded:
        for key in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
            del env[key]
    os.environ.update(env)
    if not args.embedded:
        psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc"]
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {DB}"], check=True)
        subprocess.run([*psql, f"CREATE DATABASE {DB}"], check=True)
        subprocess.run(["redis-cli", "-n", REDIS_DB, "flushdb"], check=True, stdout=subprocess.DEVNULL)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, cwd=ROOT)
    subprocess.run([*manage, "load_demo"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    from tickets.pipeline.stages import worker_queues

    if args.versions or args.shadow:
        register_versions(shadow=args.shadow)
    queues = worker_queues(settings.CELERY_TASK_DEFAULT_QUEUE)
    if args.shadow_worker:  # the shadow queue to a worker of its own, at the lowest CPU priority
        queues = [queue for queue in queues if queue != "shadow"]
    workers = [
        subprocess.Popen(_worker(",".join(queues), f"bench{number}"), cwd=ROOT)
        for number in range(args.workers)
    ]
    if args.shadow_worker:
        workers.append(subprocess.Popen(["nice", "-n", "19", *_worker("shadow", "shadow")], cwd=ROOT))
    try:
        warm_up(shadow=args.shadow)
        shadow_cpu = cpu_seconds(workers[-1:]) if args.shadow_worker else 0.0
        submitted = offered_load(args.rate, args.seconds) if args.rate > 0 else burst(args.tickets, workers)
        live_done, shadowed = time.monotonic(), shadow_count(submitted)
        if args.shadow_worker:
            shadow_cpu = cpu_seconds(workers[-1:]) - shadow_cpu
            print(f"shadow worker: {shadow_cpu:.2f} s of CPU while the live tickets went through")
        report(submitted, args)
        if args.shadow:
            shadow_drain(submitted, live_done, shadowed)
        idle_cpu(workers)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)


def _worker(queues: str, name: str) -> list[str]:
    celery = str(Path(sys.executable).parent / "celery")
    return [
        celery,
        "-A",
        "inference_app",
        "worker",
        "--pool=solo",
        "-Q",
        queues,
        "-n",
        f"{name}@%h",
        "-l",
        "WARNING",
    ]


def register_versions(*, shadow: bool) -> None:
    """The demo's label model as the active version; with ``shadow``, a second one in shadow."""
    from retrieval.label_versions import fit_candidate, save_version
    from tickets.services.model_registry import model_promote, model_register
    from tickets.services.model_retrain import retrain_cycle

    print(f"registry: {retrain_cycle().get('state')}")
    if shadow:
        candidate = fit_candidate(holdout_share=0.3)
        assert candidate.model is not None, candidate.reason
        saved = save_version(candidate.model)
        version = model_register(name="bench shadow", actor="bench", artefact_hash=saved.sha256)
        model_promote(decision_model_id=version.pk, to="shadow", actor="bench")
        print(f"shadow candidate {version.pk} registered")


def cpu_seconds(workers: list[subprocess.Popen[bytes]]) -> float:
    """CPU time the worker processes have used so far (solo pool: the task runs in the process)."""
    ticks = 0
    for worker in workers:
        fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def idle_cpu(workers: list[subprocess.Popen[bytes]], seconds: float = 10.0) -> None:
    """The workers' CPU use with nothing to do: the cost of polling the broker."""
    time.sleep(2)
    before = cpu_seconds(workers)
    time.sleep(seconds)
    used = cpu_seconds(workers) - before
    print(f"idle workers: {used / seconds:.2%} of one core ({len(workers)} processes, {seconds:.0f} s)")


def texts(count: int, seed: int = 7) -> list[tuple[str, str]]:
    from tickets.demo import content

    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        category = rng.choice(content.CATEGORIES)
        problem = rng.choice(category.problems)
        subject, body = problem.subject, problem.body
        name = rng.choice(content.FIRST_NAMES)
        # a random tail keeps tickets from being each other's near-duplicates
        tail = f" (order {rng.randint(10_000, 99_999)}, {rng.choice(['today', 'since Monday', 'again'])})"
        rows.append((subject.replace("{name}", name), body.replace("{name}", name) + tail))
    return rows


def wait_until_final(ids: list[int], timeout: float = 3600) -> None:
    from tickets.models import PipelineStage, Ticket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Ticket.objects.filter(pk__in=ids, stage__in=[PipelineStage.DONE, PipelineStage.FAILED]).count()
        if done == len(ids):
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out: {done}/{len(ids)} tickets done")


def warm_up(*, shadow: bool) -> None:
    """A few tickets (and the demo's incoming ones) load the embedder, index and model in every worker
    before the clock starts."""
    from tickets.models import Ticket
    from tickets.services.submission import ticket_submit

    [ticket_submit(subject=s, body=b) for s, b in texts(4, seed=1)]
    warm = list(Ticket.objects.exclude(status="resolved").values_list("pk", flat=True))
    wait_until_final(warm, timeout=600)
    if shadow:  # and their shadow decisions (the shadow worker's model loaded), so none is left for the burst
        shadow_drain(warm, time.monotonic(), shadow_count(warm), stalled=20, quiet=True)


def burst(count: int, workers: list[subprocess.Popen[bytes]]) -> list[int]:
    from tickets.services.submission import ticket_submit

    rows = texts(count)
    cpu_before = _cpu_snapshot(workers)
    started = time.monotonic()
    ids = [ticket_submit(subject=s, body=b).pk for s, b in rows]
    submit_seconds = time.monotonic() - started
    wait_until_final(ids)
    elapsed = time.monotonic() - started
    cpu = _cpu_used(cpu_before, _cpu_snapshot(workers))
    print(f"burst: {count} tickets submitted in {submit_seconds:.1f} s, all final after {elapsed:.1f} s")
    print(f"throughput: {count / elapsed * 60:.0f} tickets/min")
    print(
        "CPU per ticket: "
        + ", ".join(f"{part} {seconds * 1000 / count:.1f} ms" for part, seconds in cpu.items())
        + f"; total {sum(cpu.values()) * 1000 / count:.1f} ms (Redis and the rest of the machine not counted)"
    )
    return ids


def _process_cpu(pid: int) -> float:
    """utime + stime of a process in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(workers: list[subprocess.Popen[bytes]]) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the workers, this (submitting) process and the bench database's
    PostgreSQL backends, by pid."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        backends = [row[0] for row in cursor.fetchall()]
    return {
        "workers": {w.pid: _process_cpu(w.pid) for w in workers},
        "submitting process": {os.getpid(): _process_cpu(os.getpid())},
        "PostgreSQL": {pid: _process_cpu(pid) for pid in backends},
    }


def _cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each part used between the snapshots (a backend started meanwhile: all of its)."""
    return {
        part: sum(seconds - before[part].get(pid, 0.0) for pid, seconds in pids.items())
        for part, pids in after.items()
    }


def shadow_count(ids: list[int]) -> int:
    from tickets.decision_models import ShadowDecision

    return ShadowDecision.objects.filter(ticket_id__in=ids).count()


def shadow_drain(
    ids: list[int], live_done: float, at_end: int, stalled: float = 60, quiet: bool = False
) -> None:
    """How many shadow decisions were stored when the last live ticket was final, and how long after
    that the shadow queue drained (every sampled ticket decided: shadow work that yields to live traffic
    does it after the burst)."""
    from django.conf import settings

    from tickets.decision_models import ShadowDecision
    from tickets.models import Ticket
    from tickets.pipeline.versions import ticket_bucket

    contexts = Ticket.objects.filter(pk__in=ids).values_list("pk", "pipeline_context")
    expected = sum(
        1
        for pk, context in contexts
        if (context or {}).get("usable") and ticket_bucket(pk, "shadow") < settings.MODEL_SHADOW_SHARE
    )
    stored = ShadowDecision.objects.filter(ticket_id__in=ids)
    count, progress = at_end, live_done
    while count < expected and time.monotonic() < progress + stalled:
        time.sleep(0.2)
        if (now := stored.count()) > count:
            count, progress = now, time.monotonic()
    drained = progress - live_done
    if quiet:
        return
    if count >= expected:
        after = f"the last of all {expected} stored {drained:.1f} s after"
    else:
        after = f"only {count} stored, none more for {stalled:.0f} s"
    print(
        f"shadow: {at_end}/{expected} decisions stored when the last live ticket was final; {after} "
        f"(MODEL_SHADOW_MAX_DEFER_SECONDS={settings.MODEL_SHADOW_MAX_DEFER_SECONDS:g})"
    )


def offered_load(rate: float, seconds: float) -> list[int]:
    from tickets.services.submission import ticket_submit

    rows = texts(int(rate * seconds) + 1)
    started = time.monotonic()
    ids = []
    for number, (subject, body) in enumerate(rows):
        pause = started + number / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        ids.append(ticket_submit(subject=subject, body=body).pk)
    wait_until_final(ids)
    print(f"offered {rate} tickets/s for {seconds:.0f} s: {len(ids)} tickets")
    return ids


def report(ids: list[int], args: argparse.Namespace) -> None:
    from django.db.models import Count, Sum

    from tickets.models import AuditEvent, ModelCall, Suggestion, Ticket

    latencies = []
    for ticket in Ticket.objects.filter(pk__in=ids).only("created_at", "status_changed_at", "stage"):
        latencies.append((ticket.status_changed_at - ticket.created_at).total_seconds())
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    statuses = dict(Ticket.objects.filter(pk__in=ids).values_list("status").annotate(n=Count("id")))
    used = Suggestion.objects.filter(ticket_id__in=ids, model_used=True).count()
    calls = ModelCall.objects.filter(ticket_id__in=ids, shadow=False).aggregate(
        n=Count("id"), ms=Sum("latency_ms"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens")
    )
    stage_ms: dict[str, list[float]] = {}
    for stage, details in AuditEvent.objects.filter(
        ticket_id__in=ids, details__has_key="latency_ms"
    ).values_list("stage", "details"):
        stage_ms.setdefault(stage, []).append(float(details["latency_ms"]))
    print(f"submission to final: p50 {p50:.2f} s, p95 {p95:.2f} s; statuses {statuses}")
    print(f"model consulted for {used}/{len(ids)} tickets; calls {calls['n']}")
    from tickets.decision_models import DecisionStamp, ShadowDecision

    stamped = DecisionStamp.objects.filter(suggestion__ticket_id__in=ids).count()
    shadowed = ShadowDecision.objects.filter(ticket_id__in=ids)
    shadow_ms = [float(ms) for ms in shadowed.values_list("latency_ms", flat=True)]
    print(
        f"decisions stamped with a version: {stamped}; shadow decisions so far: {len(shadow_ms)}"
        + (f", mean {statistics.fmean(shadow_ms):.1f} ms per ticket" if shadow_ms else "")
    )
    print(f"tokens prompt/completion: {calls['prompt']}/{calls['completion']}")
    for stage, values in sorted(stage_ms.items()):
        print(f"  stage {stage}: mean {statistics.fmean(values):.1f} ms per ticket")
    if calls["n"]:
        total_stage = sum(sum(values) for values in stage_ms.values())
        outside = 1 - (calls["ms"] or 0) / total_stage if total_stage else 0
        print(f"  share of pipeline stage time outside the model call: {outside:.1%}")
    print(
        f"config: use_model={args.use_model} workers={args.workers} batch={args.batch_size} "
        f"backend={args.backend} embedded={args.embedded} versions={args.versions} shadow={args.shadow} "
        f"shadow_worker={args.shadow_worker} "
        f"shadow_share={os.environ.get('MODEL_SHADOW_SHARE', 'default')} "
        f"shadow_defer={os.environ.get('MODEL_SHADOW_MAX_DEFER_SECONDS', 'default')} "
        f"poll={os.environ.get('CELERY_FILESYSTEM_POLL_SECONDS', 'default')}; "
        f"load average {os.getloadavg()[0]:.1f}; machine: {os.cpu_count()} cores; "
        f"command: {' '.join(sys.argv)}"
    )


if __name__ == "__main__":
    main()
