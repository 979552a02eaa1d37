"""How candidate servers take the hostile cases of issue 16, measured the same way for each (not in `make bench`).

    .venv/bin/pip install waitress cheroot       # candidates that are not mlmon dependencies
    .venv/bin/python -m benchmarks.eval_servers  # about 4 minutes; skips what is not installed

Each candidate serves mlmon's two Flask apps (the benchmark model) in a child process on free
loopback ports, then:

* chunked: the chunked-crash request of issue 16 (huge chunk size, 2 bytes, half-close): the
  answer, and whether the process lives;
* trickle: 200 connections trickling one header byte each 0.5 s for 12 s; does /metrics answer
  within 1 s meanwhile, how many threads the server holds, and how many of the 200 it has cut
  off by the end (mlmon's header deadline is 10 s; the others were given 10 s timeouts);
* idle: one connection that sends nothing; is it closed within 15 s;
* scrape p99: /metrics latency under 8 posters (as bench_serving).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.bench_serving import measure
from benchmarks.common import bodies, free_port, workspace

CANDIDATES = ("werkzeug", "waitress", "cheroot", "mlmon-uvicorn")
CHUNKED = b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n[]"


def serve(candidate: str, metrics_port: int, ingest_port: int) -> None:
    """Child process: run the candidate until killed."""
    import logging

    from exporter.http import server
    from exporter.http.app import create_ingest_app, create_metrics_app
    from exporter.http.service import Exporter
    from exporter.state.store import StateStore

    logging.basicConfig(level=logging.ERROR)
    folder, config = workspace()
    if candidate == "mlmon-uvicorn":
        server.start(config, f"127.0.0.1:{metrics_port}", f"127.0.0.1:{ingest_port}")
        threading.Event().wait()
    exporter = Exporter(config, StateStore(config, server.load_profiles(config)))
    apps = {metrics_port: create_metrics_app(exporter), ingest_port: create_ingest_app(exporter)}
    if candidate == "werkzeug":
        from werkzeug.serving import make_server

        servers = [make_server("127.0.0.1", port, app, threaded=True) for port, app in apps.items()]
        for s in servers[1:]:
            threading.Thread(target=s.serve_forever, daemon=True).start()
        servers[0].serve_forever()
    elif candidate == "waitress":
        from waitress import serve as waitress_serve

        def by_port(environ, start_response):  # one waitress, two ports: route by the port asked
            return apps[int(environ["SERVER_PORT"])](environ, start_response)

        waitress_serve(by_port, listen=f"127.0.0.1:{metrics_port} 127.0.0.1:{ingest_port}", threads=4,
                       channel_timeout=10, max_request_body_size=64 * 1024 * 1024, connection_limit=1000)
    elif candidate == "cheroot":
        from cheroot.wsgi import Server

        servers = [Server(("127.0.0.1", port), app, numthreads=10, timeout=10) for port, app in apps.items()]
        for s in servers[1:]:
            threading.Thread(target=s.safe_start, daemon=True).start()
        servers[0].safe_start()


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def get_within(port: int, seconds: float) -> str:
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = sock.recv(64)
        return f"{head[9:12].decode() or 'closed'} in {time.perf_counter() - started:.2f} s"
    except OSError as error:
        return f"{type(error).__name__} after {time.perf_counter() - started:.1f} s"


def chunked(port: int, proc: subprocess.Popen) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(CHUNKED)
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(256)
    except OSError as error:
        answer = type(error).__name__.encode()
    time.sleep(1.0)  # let a crash happen before looking
    alive = "lives" if proc.poll() is None else f"DIED ({proc.returncode})"
    return f"{answer[9:12].decode() or 'no answer'}, process {alive}"


def trickle(metrics_port: int, pid: int) -> tuple[str, int, int]:
    conns = [socket.create_connection(("127.0.0.1", metrics_port), timeout=5) for _ in range(200)]
    for sock in conns:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    probe = ""
    for step in range(24):
        for sock in conns:
            try:
                sock.sendall(b"X")
            except OSError:
                pass
        if step == 4:
            probe = get_within(metrics_port, 1.0)
        time.sleep(0.5)
    held = threads_of(pid)
    cut = 0
    for sock in conns:
        sock.setblocking(False)
        try:
            sock.recv(1, socket.MSG_PEEK)  # an answer (408) or EOF: the server ended it
            cut += 1
        except BlockingIOError:
            pass  # still waiting for the rest of the headers
        except OSError:
            cut += 1
        sock.close()
    return probe, held, cut


def idle_closed(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        started = time.perf_counter()
        try:
            data = sock.recv(256)
            return f"closed after {time.perf_counter() - started:.1f} s ({data[9:12].decode() or 'EOF'})"
        except socket.timeout:
            return "still open after 15 s"


def evaluate(candidate: str) -> dict[str, str]:
    metrics_port, ingest_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.eval_servers", "serve", candidate, str(metrics_port),
                             str(ingest_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while "200" not in get_within(metrics_port, 1.0):
            if time.monotonic() > deadline or proc.poll() is not None:
                return {"error": "did not start"}
            time.sleep(0.2)
        result = {"threads idle": str(threads_of(proc.pid))}
        probe, held, cut = trickle(metrics_port, proc.pid)
        result.update({"/metrics during 200 tricklers": probe, "threads with 200 tricklers": str(held),
                       "tricklers cut off within 12 s": str(cut)})
        result["silent connection"] = idle_closed(metrics_port)
        body, _, _ = bodies(1000)["columnar"]
        with tempfile.NamedTemporaryFile(delete=False) as handle:
            handle.write(body)
        scrape = measure(metrics_port, ingest_port, handle.name)
        os.unlink(handle.name)
        result["scrape p50/p99 under 8 posters"] = f"{scrape['p50'] * 1000:.0f} / {scrape['p99'] * 1000:.0f} ms"
        result["ingest meanwhile"] = f"{scrape['values_per_s'] / 1e6:.2f}M values/s"
        result["chunked crash request"] = chunked(ingest_port, proc)
        return result
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    rows = {}
    for candidate in CANDIDATES:
        module = {"mlmon-uvicorn": "uvicorn"}.get(candidate, candidate)
        if importlib.util.find_spec(module) is None:
            print(f"{candidate}: not installed, skipped")
            continue
        rows[candidate] = evaluate(candidate)
        print(candidate, json.dumps(rows[candidate], indent=1), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
