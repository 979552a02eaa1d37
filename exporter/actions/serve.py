"""`mlmon act` as a process: the act app on the same uvicorn glue as `mlmon serve` (exporter/http/server.py).

One listener with the sidecar's server limits (`exporter:` connection cap, header and body
deadlines), credentials checked before the body (a bearer token from alerting.act.bearer_token_file,
or basic auth/TLS from --web.config.file), then the app. SIGTERM/SIGINT stop accepting, let
queued runs finish within exporter.shutdown_grace and exit; SIGHUP is logged, not a reload.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from exporter.actions.app import create_act_app
from exporter.actions.receiver import ActReceiver
from exporter.config.model import MlmonConfig
from exporter.http.listener import Listener
from exporter.http.server import ListenerServer, _uvicorn_config, bind
from exporter.http.signals import SignalInbox
from exporter.http.web_config import TokenFile, WebConfigSource

log = logging.getLogger("mlmon.act")


class _Stats:
    """What the shared listener counts (server limits hit), counted into mlmon_action_limit_hits_total."""

    def __init__(self, receiver: ActReceiver) -> None:
        self.receiver = receiver

    def limit_hit(self, limit: str) -> None:
        self.receiver.metrics.limits.labels(limit).inc()

    def request(self, *args: object) -> None:
        pass


@dataclass
class _Host:
    """The two things the listener reads from its owner: the config (its limits) and the stats."""

    config: MlmonConfig
    stats: _Stats


class ActListener(Listener):
    def max_body_bytes(self) -> int:
        return self.exporter.config.alerting.act.max_request_bytes


@dataclass
class RunningAct:
    receiver: ActReceiver
    listener: ActListener
    server: ListenerServer
    port: int
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    def stop(self, grace: float = 5.0) -> None:
        self.server.config.timeout_graceful_shutdown = int(grace)
        self.loop.call_soon_threadsafe(lambda: setattr(self.server, "should_exit", True))
        self.thread.join(timeout=grace + 5)
        self.listener.wsgi.executor.shutdown(wait=False, cancel_futures=True)
        self.receiver.stop(grace)


def start_act(config: MlmonConfig, listen: str | None = None, dry_run: bool = False,
              web_config_file: str | None = None) -> RunningAct:
    """Start the act listener on an event loop thread; a port of 0 picks a free one (tests)."""
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
    receiver = ActReceiver(config, dry_run=dry_run)
    token_file = config.alerting.act.bearer_token_file
    listener = ActListener("act", _Host(config, _Stats(receiver)), create_act_app(receiver),  # type: ignore[arg-type]
                           config.exporter.metrics_threads,
                           web=WebConfigSource(web_config_file) if web_config_file else None,
                           token=TokenFile(token_file) if token_file else None)
    sock = bind(listen or config.alerting.act.listen)
    server = ListenerServer(_uvicorn_config(listener, config), sock, config.exporter.header_timeout)
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve())
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="mlmon-act-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    if not server.started:
        sock.close()
        receiver.stop(0)
        raise OSError("the mlmon act listener did not start")
    return RunningAct(receiver, listener, server, int(sock.getsockname()[1]), loop, thread)


def serve_act(config: MlmonConfig, listen: str | None = None, dry_run: bool = False,
              web_config_file: str | None = None) -> None:
    """Run until SIGTERM or SIGINT."""
    # Before any server thread starts; SIGHUP is taken too, as it would otherwise kill (http/signals.py).
    inbox = SignalInbox({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    running = start_act(config, listen, dry_run, web_config_file)
    receiver = running.receiver
    log.info("mlmon act listening on %s with %d action(s)%s: %s", listen or config.alerting.act.listen,
             len(receiver.actions), " (dry run: nothing is called)" if receiver.dry_run else "",
             ", ".join(f"{a.name} ({a.kind}{', dry run' if a.dry_run else ''})" for a in receiver.actions.values()) or "none")
    while (received := inbox.wait()) == signal.SIGHUP:
        log.warning("SIGHUP: mlmon act does not reload its config; restart it to read a new one")
    grace = config.exporter.shutdown_grace
    log.info("%s: finishing queued runs for at most %d s", signal.Signals(received).name, grace)
    running.stop(grace)
    logging.shutdown()
    os._exit(0)
