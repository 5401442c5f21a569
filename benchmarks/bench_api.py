"""Ticket creation through the REST API under load: gunicorn + PostgreSQL + Redis, driven by wrk.

    python benchmarks/bench_api.py                       # 50, 100, 200 clients, 60 s each
    python benchmarks/bench_api.py --duration 20 --workers 3 --concurrency 100
    python benchmarks/bench_api.py --endpoints reference,single --concurrency 50 --duration 20
    python benchmarks/bench_api.py --profile 3000        # where one request's time goes (cProfile)
    python benchmarks/bench_api.py --profile 100 --endpoints batch   # the same for batches of 100

Each concurrency runs each of ``--endpoints``: ``single`` (POST /api/v1/tickets), ``batch`` (POST
/api/v1/tickets/batch, ``--batch-size`` items per request; tickets/s counts the items created) and
``reference``: the yardstick, a bare Django view that parses the same JSON and does one INSERT
(``benchmarks/reference_urls.py``, mounted only by the benchmark's settings module), on the same
gunicorn, in the same run; the table gives each endpoint's tickets/s as a ratio to it.

It makes a fresh database (``--database``, dropped and re-created), migrates it, makes an API token,
starts gunicorn, and for each concurrency runs wrk (Debian package ``wrk``) with
benchmarks/bench_api.lua: every request is a POST /api/v1/tickets with its own external_id and
Idempotency-Key. It prints requests/s, p50/p90/p99 latency, and checks that the tickets in the
database equal the requests accepted (201), plus the few still in flight when wrk stopped.
The pipeline is enqueued for every ticket (Redis broker); no worker consumes it during the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).with_name("bench_api.lua")


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.broker_url,
        "SWITCHBOARD_DATA_DIR": args.data_dir,
        "LOG_LEVEL": "warning",
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "inference_app.settings",
    }


ENDPOINTS = {"single": "/api/v1/tickets", "batch": "/api/v1/tickets/batch", "reference": "/bench/reference"}


def fresh_database(name: str) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def make_token(env: dict[str, str]) -> str:
    code = (
        "from tickets.services.api_tokens import token_create; "
        "print(token_create(name='bench', scopes=['read', 'write'], rate_limit_per_minute=10**8)[1])"
    )
    return manage(env, "shell", "-c", code).strip().splitlines()[-1]


def start_gunicorn(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "inference_app.wsgi",
        "--bind", f"127.0.0.1:{args.port}",
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
        "--threads", str(args.threads),
        "--backlog", "4096",
        "--keep-alive", "30",
        "--log-level", "warning",
    ]  # fmt: skip
    # The benchmark's settings add the reference endpoint to the project's URLs.
    server = subprocess.Popen(
        command, cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "benchmarks.reference_settings"}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    sys.exit("gunicorn did not come up")


def run_wrk(
    args: argparse.Namespace, token: str, connections: int, seconds: int, run: str, endpoint: str = "single"
) -> dict[str, int]:
    if endpoint == "batch":
        sys.exit("the batch endpoint needs --client python")
    threads = min(args.wrk_threads, connections)
    command = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
        "-s", str(LUA), f"http://127.0.0.1:{args.port}", "--", run, token, ENDPOINTS[endpoint],
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_RESULT "))
    result: dict[str, int] = json.loads(line.removeprefix("WRK_RESULT "))
    return result


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and its children (the gunicorn workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [root_pid]
    for pid in list(pids):
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            pids += [int(child) for child in children.read_text().split()]
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def database_backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``database`` (the gunicorn workers' sessions)."""
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        pids = [
            row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
        ]
    return {pid: cpu_seconds_of(pid) for pid in pids}


def cpu_seconds_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_python_client(
    args: argparse.Namespace, token: str, connections: int, seconds: int, run: str, endpoint: str = "single"
) -> dict[str, int]:
    """benchmarks/bench_api_client.py in its own process: it waits for every answer in flight."""
    command = [
        sys.executable, str(Path(__file__).with_name("bench_api_client.py")), "--port", str(args.port),
        "--token", token, "--connections", str(connections), "--seconds", str(seconds), "--run", run,
        "--path", ENDPOINTS[endpoint], "--batch", str(args.batch_size if endpoint == "batch" else 0),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, int] = json.loads(output.strip().splitlines()[-1])
    return result


def count_tickets(database: str, run: str) -> tuple[int, int]:
    """Tickets of this run, and how many distinct external ids they have (a duplicate would show)."""
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}") as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT external_id) FROM tickets_ticket "
            "WHERE channel = 'api' AND external_id LIKE %s",
            (f"bench-{run}-%",),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def profile(args: argparse.Namespace, env: dict[str, str], token: str) -> None:
    """cProfile of N ticket POSTs through Django's full stack, in a child process (no network)."""
    child = [sys.executable, __file__, "--profile-child", str(args.profile), "--token", token]
    child += ["--endpoints", args.endpoints, "--batch-size", str(args.batch_size)]
    subprocess.run(child, cwd=ROOT, env=env, check=True)


def profile_child(requests: int, token: str, endpoint: str, batch_size: int) -> None:
    import cProfile
    import pstats

    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    text = "The invoice shows a charge I do not recognise. " * 5

    def item(n: int) -> dict[str, str]:
        key = f"profile-{uuid.uuid4().hex}"
        return {
            "subject": f"Charge {n}",
            "body": text,
            "requester_email": "c@example.com",
            "external_id": key,
        }

    def post(n: int) -> None:
        if endpoint == "batch":
            items = [item(n) for _ in range(batch_size)]
            response = client.post(ENDPOINTS["batch"], {"items": items}, content_type="application/json")
            assert response.status_code == 200 and response.json()["created"] == batch_size, response.content
            return
        body = item(n)
        response = client.post(
            ENDPOINTS["single"],
            body,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=body["external_id"],
        )
        assert response.status_code == 201, response.content

    for n in range(200 if endpoint != "batch" else 10):  # warm up: imports, connections, caches
        post(n)
    started, cpu_started = time.perf_counter(), time.process_time()
    for n in range(requests):
        post(n)
    plain, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    profiler = cProfile.Profile(time.process_time)  # CPU time: what the web process itself costs
    profiler.enable()
    for n in range(requests):
        post(n)
    profiler.disable()
    rate, wall_ms, cpu_ms = requests / plain, plain / requests * 1000, cpu / requests * 1000
    print(f"{endpoint}: {rate:.0f} requests/s in one process, {wall_ms:.2f} ms each, ", end="")
    print(f"{cpu_ms:.2f} ms of this process's CPU each (load {os.getloadavg()[0]:.1f})")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


def summarise(client: str, result: dict[str, Any]) -> dict[str, Any]:
    if client == "python":
        rate = result["requests"] / result["seconds"]
        return {
            "requests_per_s": round(rate, 1),
            **{key: result[key] for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "other_status")},
            "accepted_201": result["tickets_accepted"],
            "tickets_per_s": round(result["tickets_accepted"] / result["seconds"], 1),
            "socket_errors": result["socket_errors"],
            "cut_in_flight": 0,
        }
    seconds = result["duration_us"] / 1e6
    return {
        "requests_per_s": round(result["requests"] / seconds, 1),
        **{f"{name}_ms": round(result[f"{name}_us"] / 1000, 2) for name in ("p50", "p90", "p99", "max")},
        "accepted_201": result["created_201"],
        "tickets_per_s": round(result["created_201"] / seconds, 1),
        "other_status": result["other_status"],
        "socket_errors": sum(
            result[key] for key in result if key.startswith("errors_") and key != "errors_status"
        ),
        "cut_in_flight": result["sent"] - result["received"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", default="50,100,200", help="Comma-separated client counts.")
    parser.add_argument("--duration", type=int, default=60, help="Seconds per concurrency.")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes.")
    parser.add_argument("--worker-class", default="gthread", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=4, help="Threads per gunicorn worker (gthread).")
    parser.add_argument(
        "--client",
        default="python",
        choices=("python", "wrk"),
        help="python: asyncio client that waits for every answer (exact counts); wrk: lighter on CPU.",
    )
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--endpoints", default="reference,single,batch", help=f"Comma-separated, of {', '.join(ENDPOINTS)}."
    )
    parser.add_argument("--batch-size", type=int, default=100, help="Items per batch request.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database", default="sb_bench_api")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "sb-bench-api"))
    parser.add_argument("--profile", type=int, default=0, help="Profile this many requests instead.")
    parser.add_argument("--profile-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_child:
        endpoint = "batch" if args.endpoints == "batch" else "single"
        profile_child(args.profile_child, args.token, endpoint, args.batch_size)
        return
    if args.client == "wrk" and shutil.which("wrk") is None and not args.profile:
        sys.exit("wrk is not installed: apt-get install wrk")

    env = bench_env(args)
    fresh_database(args.database)
    manage(env, "migrate", "--no-input")
    redis.Redis.from_url(args.redis_url).flushdb()
    token = make_token(env)
    if args.profile:
        profile(args, env, token)
        return

    server = start_gunicorn(args, env)
    broker = redis.Redis.from_url(args.broker_url)
    results = []
    try:
        load = run_wrk if args.client == "wrk" else run_python_client
        load(args, token, 50, 5, f"warm{uuid.uuid4().hex[:6]}")
        runs = [
            (int(part), endpoint)
            for part in args.concurrency.split(",")
            for endpoint in args.endpoints.split(",")
        ]
        for connections, endpoint in runs:
            broker.flushdb()
            run = uuid.uuid4().hex[:8]
            cpu_before, db_before = cpu_seconds(server.pid), database_backend_cpu(args.database)
            result = load(args, token, connections, args.duration, run, endpoint)
            web_cpu = cpu_seconds(server.pid) - cpu_before
            db_after = database_backend_cpu(args.database)
            db_cpu = sum(cpu - db_before.get(pid, 0.0) for pid, cpu in db_after.items())
            time.sleep(1.0)  # with wrk: let requests cut off in flight finish on the server
            created, distinct = count_tickets(args.database, run)
            row = {"endpoint": endpoint, "clients": connections, **summarise(args.client, result)}
            row["load_average"] = round(os.getloadavg()[0], 1)
            row["tickets_created"], row["duplicates"] = created, created - distinct
            row["web_cpu_ms_per_ticket"] = round(web_cpu * 1000 / max(1, row["accepted_201"]), 2)
            row["postgres_cpu_ms_per_ticket"] = round(db_cpu * 1000 / max(1, row["accepted_201"]), 2)
            accepted, in_flight = row["accepted_201"], row["cut_in_flight"]
            # Every accepted request made exactly one ticket; with wrk, requests cut off when it
            # stopped may have made one too (they are not counted as accepted).
            row["created_equals_accepted"] = (
                created == distinct and accepted <= created <= accepted + in_flight
            )
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        broker.flushdb()
    threads = f" ({args.threads} threads)" if args.worker_class == "gthread" else ""
    print(f"\ngunicorn {args.workers} x {args.worker_class}{threads}, {args.duration} s per run, ", end="")
    print(f"{os.cpu_count()} CPUs shared with PostgreSQL, Redis and wrk")
    header = (
        "endpoint", "clients", "req/s", "tickets/s", "x ref", "p50 ms", "p99 ms", "accepted", "created",
        "in flight", "web CPU", "PG CPU", "load avg",
    )  # fmt: skip
    print(" ".join(f"{name:>9}" for name in header), "ok")
    reference = {row["clients"]: row["tickets_per_s"] for row in results if row["endpoint"] == "reference"}
    for row in results:
        ratio = row["tickets_per_s"] / reference[row["clients"]] if reference.get(row["clients"]) else None
        row["ratio_to_reference"] = "-" if ratio is None else f"{ratio:.2f}"
        keys = (
            "endpoint",
            "clients",
            "requests_per_s",
            "tickets_per_s",
            "ratio_to_reference",
            "p50_ms",
            "p99_ms",
            "accepted_201",
            "tickets_created",
            "cut_in_flight",
            "web_cpu_ms_per_ticket",
            "postgres_cpu_ms_per_ticket",
            "load_average",
        )
        print(" ".join(f"{row[key]:>9}" for key in keys), "yes" if row["created_equals_accepted"] else "NO")


if __name__ == "__main__":
    main()
