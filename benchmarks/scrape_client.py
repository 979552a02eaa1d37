"""A scraper run as a separate process by bench_serving: GET /metrics in a loop, print each latency.

One keep-alive connection, as Prometheus keeps one per target; at most --scrapes scrapes and at
most --seconds seconds, with --pause seconds between scrapes.

    python -m benchmarks.scrape_client --port 8710 --seconds 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--scrapes", type=int, default=2000)
    parser.add_argument("--pause", type=float, default=0.02)
    args = parser.parse_args(argv)
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + args.seconds
    while len(latencies) < args.scrapes and time.perf_counter() < deadline:
        started = time.perf_counter()
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        time.sleep(args.pause)
    connection.close()
    json.dump({"latencies": latencies, "statuses": statuses}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
