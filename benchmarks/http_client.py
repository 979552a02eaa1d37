"""A minimal HTTP/1.1 load client, run as a separate process by bench_ingest.

It sends one pre-encoded body again and again (with fresh record ids each time) over one
keep-alive connection to 127.0.0.1 and
prints JSON with how many requests it sent and the wall time, so the server's process (the one
being measured) does no client work. Both bounds are enforced: at most --requests requests and
at most --seconds seconds (the request in flight is finished).

    python -m benchmarks.http_client --port 8711 --body /tmp/body.json --requests 50 --seconds 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.common import ID_TOKEN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/predictions")
    parser.add_argument("--body", required=True, help="file holding the request body")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=1, help="concurrent keep-alive connections (threads)")
    args = parser.parse_args(argv)
    with open(args.body, "rb") as handle:
        body = handle.read()
    if args.connections > 1:  # one process for many posters: the machine's cores stay with the server
        with ThreadPoolExecutor(args.connections) as pool:
            reports = list(pool.map(lambda _: post(args, body), range(args.connections)))
        statuses: dict[int, int] = {}
        for report in reports:
            for code, count in report["statuses"].items():
                statuses[code] = statuses.get(code, 0) + count
        json.dump({"requests": sum(r["requests"] for r in reports), "seconds": max(r["seconds"] for r in reports),
                   "statuses": statuses, "first_answer": reports[0]["first_answer"]}, sys.stdout)
        return 0
    json.dump(post(args, body), sys.stdout)
    return 0


def post(args: argparse.Namespace, body: bytes) -> dict:
    """One connection's loop; its report."""
    headers = {"Content-Type": args.content_type, "Content-Length": str(len(body))}
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
    statuses: dict[int, int] = {}
    first_answer = None
    sent = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    while sent < args.requests and time.perf_counter() < deadline:
        # Fresh ids per request (see common.ID_TOKEN): same length, so Content-Length still holds.
        fresh = body.replace(ID_TOKEN, b"RQ%06d" % (sent % 1_000_000))
        connection.request("POST", args.path, body=fresh, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if first_answer is None:
            first_answer = answer[:300].decode(errors="replace")
        sent += 1
    elapsed = time.perf_counter() - started
    connection.close()
    return {"requests": sent, "seconds": elapsed, "statuses": statuses, "first_answer": first_answer}


if __name__ == "__main__":
    raise SystemExit(main())
