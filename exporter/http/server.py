"""`mlmon serve`: both listeners in one process, sharing one state, with a graceful shutdown.

werkzeug's threaded WSGI server is used (it ships with Flask): state lives in this process, so
one process with threads is the model, and socketserver's shutdown() gives a clean SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, make_server

from exporter.http.app import create_ingest_app, create_metrics_app
from exporter.http.service import Exporter
from exporter.config.model import MlmonConfig
from exporter.profiles.load import load_profiles
from exporter.state.snapshot import FILE_NAME as SNAPSHOT_FILE, Snapshotter
from exporter.state.store import StateStore

log = logging.getLogger("mlmon")


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class RunningExporter:
    exporter: Exporter
    servers: list[BaseWSGIServer]
    threads: list[threading.Thread]

    @property
    def metrics_port(self) -> int:
        return self.servers[0].server_port

    @property
    def ingest_port(self) -> int:
        return self.servers[1].server_port

    def stop(self) -> None:
        self.exporter.ready = False
        for server in self.servers:
            server.shutdown()  # finishes the request in flight, then returns
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=10)
        if self.exporter.snapshotter is not None:  # after the listeners: nothing changes the state any more
            self.exporter.snapshotter.stop()




def start_snapshots(config: MlmonConfig, exporter: Exporter) -> Snapshotter | None:
    """Restore the last snapshot (before any traffic) and save periodically, when exporter.state_dir is set."""
    state_dir = config.state_dir()
    if state_dir is None:
        return None
    snapshotter = Snapshotter(
        state_dir / SNAPSHOT_FILE, exporter.store, {"stats": exporter.stats}, config.exporter.snapshot_interval
    )
    snapshotter.restore()
    snapshotter.start()
    return snapshotter


def start(config: MlmonConfig, metrics_listen: str | None = None, ingest_listen: str | None = None) -> RunningExporter:
    """Start both listeners in background threads; ports of 0 pick free ones (tests)."""
    # werkzeug logs every request; mlmon logs events worth knowing, not requests.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    exporter = Exporter(config, StateStore(config, load_profiles(config)))
    exporter.snapshotter = start_snapshots(config, exporter)
    servers = []
    for listen, app in (
        (metrics_listen or config.exporter.metrics_listen, create_metrics_app(exporter)),
        (ingest_listen or config.exporter.ingest_listen, create_ingest_app(exporter)),
    ):
        host, port = split_listen(listen)
        servers.append(make_server(host, port, app, threaded=True))
    # A short poll interval makes stop() (SIGTERM, tests) return in ~0.1 s instead of 0.5 s per listener.
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, name=f"mlmon-{i}", daemon=True)
        for i, s in enumerate(servers)
    ]
    for thread in threads:
        thread.start()
    return RunningExporter(exporter, servers, threads)


def serve(config: MlmonConfig) -> None:
    """Run until SIGTERM or SIGINT."""
    running = start(config)
    log.info(
        "mlmon exporter serving metrics on %s and ingest on %s for %d model(s)",
        config.exporter.metrics_listen, config.exporter.ingest_listen, len(config.models),
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down")
    running.stop()
    log.info("stopped")
