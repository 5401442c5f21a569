"""The load generator of benchmarks/bench_api.py when run with --client python: N keep-alive
connections, each POSTing tickets back to back for D seconds, then waiting for the answers still
in flight, so every request sent is counted (created must equal accepted, exactly).

    python benchmarks/bench_api_client.py --port 8765 --token sb_... --connections 100 --seconds 60

With --batch N each request is one POST of N items to --path /api/v1/tickets/batch, and the
tickets accepted are the sum of the answers' "created".

Prints one JSON line: requests, accepted (201), tickets accepted, other statuses, errors, latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


async def connection(
    number: int,
    args: argparse.Namespace,
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
    tickets: list[int],
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    text = "The invoice for March shows a charge I do not recognise. " * 5
    sent = 0
    errors = 0
    while time.monotonic() < deadline:
        sent += 1
        external_id = f"bench-{args.run}-{number}-{sent}"
        items = [
            {
                "subject": f"Unknown charge {sent}.{item}",
                "body": text,
                "requester_email": f"customer{sent % 997}@example.com",
                "external_id": f"{external_id}-{item}" if args.batch else external_id,
            }
            for item in range(max(1, args.batch))
        ]
        body = json.dumps({"items": items} if args.batch else items[0]).encode()
        head = (
            f"POST {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {args.token}\r\nIdempotency-Key: {external_id}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        try:
            writer.write(head + body)
            status_line = await reader.readline()
            length, closing = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                lowered = line.lower()
                if lowered.startswith(b"content-length:"):
                    length = int(line[15:])
                elif lowered.startswith(b"connection:") and b"close" in lowered:
                    closing = True
            answer = await reader.readexactly(length)
            status = int(status_line.split()[1])
            if closing:  # gunicorn's sync workers answer one request per connection
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            errors += 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
            continue
        latencies.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 201:
            tickets[0] += 1
        elif status == 200 and args.batch:
            tickets[0] += int(json.loads(answer)["created"])
    writer.close()
    return errors


async def main(args: argparse.Namespace) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    tickets = [0]
    started = time.monotonic()
    deadline = started + args.seconds
    errors = await asyncio.gather(
        *(
            connection(number, args, deadline, latencies, statuses, tickets)
            for number in range(args.connections)
        )
    )
    elapsed = time.monotonic() - started
    latencies.sort()
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "seconds": round(elapsed, 3),
                "accepted_201": statuses.get(201, 0),
                "tickets_accepted": tickets[0],
                "other_status": sum(
                    count for status, count in statuses.items() if status != (200 if args.batch else 201)
                ),
                "statuses": {str(key): value for key, value in statuses.items()},
                "socket_errors": sum(errors),
                "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
                "p90_ms": round(percentile(latencies, 0.90) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                "max_ms": round((latencies[-1] if latencies else 0) * 1000, 2),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--run", default="run")
    parser.add_argument("--path", default="/api/v1/tickets")
    parser.add_argument("--batch", type=int, default=0, help="items per request (POST /tickets/batch)")
    asyncio.run(main(parser.parse_args()))
