"""`mlmon serve`: both listeners in one process (the state is in memory), on uvicorn, with a graceful drain.

Why uvicorn (benchmarks/README.md has the comparison and the numbers): it is a maintained
production server whose event loop holds any number of slow clients without a thread each,
parses with llhttp, speaks TLS with client certificates, and drains on shutdown with a deadline.
Two `uvicorn.Server`s share one event loop thread here; each listener runs its Flask app in its
own small thread pool (`wsgi_pool.py`), so scrapes never queue behind ingest, and scrapes go
first (`priority.py`). What uvicorn lacks is added
in small glue: a connection cap, a header deadline and a header size limit (`protocol.py`);
credentials before the body, the body limit while reading and a body deadline (`listener.py`).

Signals (`serve`): SIGTERM/SIGINT stop accepting, let requests in flight finish within
`exporter.shutdown_grace`, and exit; a watchdog exits hard just after the grace period, so the
pod never waits for SIGKILL. SIGHUP reloads the config (`reload.py`). The main thread takes
every signal, whichever thread the kernel gave it to (`signals.py`), so none is lost or fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import uvicorn

from exporter.config.model import MlmonConfig
from exporter.http.app import create_ingest_app, create_metrics_app
from exporter.http.gc_tuning import tune_gc
from exporter.http.listener import Listener
from exporter.http.priority import ScrapePriority
from exporter.http.protocol import GuardedProtocol
from exporter.http.reload import reload_exporter
from exporter.http.service import Exporter
from exporter.http.signals import SignalInbox
from exporter.http.web_config import TokenFile, WebConfigSource
from exporter.profiles.profile import Profile
from exporter.profiles.load import load_profiles as load_config_profiles
from exporter.profiles.promoted import apply_promoted
from exporter.state.snapshot import FILE_NAME as SNAPSHOT_FILE, Snapshotter
from exporter.state.store import StateStore

log = logging.getLogger("mlmon")

BACKLOG = 1024
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def load_profiles(config: MlmonConfig) -> dict[str, Profile]:
    """The config's reference profiles, with references promoted since (kept in exporter.state_dir) put in."""
    return apply_promoted(config, load_config_profiles(config))


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class ServeOptions:
    """What `mlmon serve` takes besides mlmon.yaml (flags and MLMON_* variables, see cli.py)."""

    config_path: str | None = None  # for reloads; None: reload is refused
    web_config_file: str | None = None  # exporter-toolkit format, metrics listener
    ingest_web_config_file: str | None = None  # the same format, ingest listener
    ingest_bearer_token_file: str | None = None  # overrides exporter.ingest_bearer_token_file
    metrics_listen: str | None = None  # override exporter.metrics_listen
    ingest_listen: str | None = None  # override exporter.ingest_listen


class ListenerServer(uvicorn.Server):
    """uvicorn's Server on a socket bound beforehand, with a TLS handshake deadline and no signal handlers.

    The socket is bound by `start()` in the caller's thread, so a port in use fails there (exit 2)
    and ports of 0 are known at once.
    """

    def __init__(self, config: uvicorn.Config, sock: socket.socket, handshake_timeout: float) -> None:
        super().__init__(config)
        self.sock = sock
        self.handshake_timeout = handshake_timeout

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # serve() owns the signals of the process

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        loop = asyncio.get_running_loop()

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(config=config, server_state=self.server_state, app_state={}, _loop=loop)

        # A TLS handshake happens before the protocol sees the connection: without its own deadline
        # a client that stops mid-handshake would be held for asyncio's default 60 s.
        tls = {"ssl": config.ssl, "ssl_handshake_timeout": self.handshake_timeout} if config.ssl else {}
        self.servers = [await loop.create_server(create_protocol, sock=self.sock, backlog=BACKLOG, **tls)]
        self.started = True


class AcceptErrorFilter(logging.Filter):
    """asyncio logs every failed accept() with a traceback: thousands of lines a second at the fd limit.

    One line a minute says it instead, with how many were dropped; asyncio itself already waits a
    second before accepting again, so nothing spins.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last = -60.0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "accept() out of system resource" not in str(record.msg):
            return True
        now = time.monotonic()
        if now - self.last < 60:
            self.suppressed += 1
            return False
        record.msg = ("accept() failed: out of file descriptors or memory (%d more in the last minute); "
                      "lower exporter.max_connections or raise the open-files limit")
        record.args, record.exc_info, record.exc_text = (self.suppressed,), None, None
        self.last, self.suppressed = now, 0
        return True


def bind(listen: str) -> socket.socket:
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto is
    # IPPROTO_TCP, and socket.create_server() leaves it 0. With Nagle on, an answer written as
    # headers then body waits for the client's delayed ACK: 40 ms added to every request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


@dataclass
class RunningExporter:
    exporter: Exporter
    listeners: list[Listener]
    servers: list[ListenerServer]
    sockets: list[socket.socket]
    options: ServeOptions = field(default_factory=ServeOptions)
    loop: asyncio.AbstractEventLoop | None = None
    thread: threading.Thread | None = None

    @property
    def metrics_port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    @property
    def ingest_port(self) -> int:
        return int(self.sockets[1].getsockname()[1])

    def reload(self) -> tuple[bool, str]:
        """Re-read mlmon.yaml and its profiles (SIGHUP, POST /-/reload); see reload.py."""
        if self.options.config_path is None:
            return False, "no config file to reload (started without --config)"
        ok, message = reload_exporter(self.exporter, self.options.config_path, load_profiles)
        if ok:  # Flask's own backstop of the body limit follows the new config
            self.listeners[1].app.config["MAX_CONTENT_LENGTH"] = self.exporter.config.exporter.max_request_bytes
        return ok, message

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let requests in flight finish within the grace period, then return."""
        self.exporter.ready = False
        grace = self.exporter.config.exporter.shutdown_grace if grace is None else grace
        for server in self.servers:
            server.config.timeout_graceful_shutdown = int(max(grace, 0))
        if self.loop is not None and self.thread is not None and self.thread.is_alive():
            def request_exit() -> None:
                for server in self.servers:
                    server.should_exit = True

            self.loop.call_soon_threadsafe(request_exit)
            self.thread.join(timeout=grace + 5)
        for listener in self.listeners:
            listener.wsgi.executor.shutdown(wait=False, cancel_futures=True)
        for sock in self.sockets:
            sock.close()
        if self.exporter.snapshotter is not None:  # after the listeners: nothing changes the state any more
            self.exporter.snapshotter.stop()


def _uvicorn_config(listener: Listener, config: MlmonConfig) -> uvicorn.Config:
    limits = config.exporter
    context = listener.web.server_context() if listener.web is not None else None
    return uvicorn.Config(
        listener,
        http=functools.partial(GuardedProtocol, listener=listener),  # type: ignore[arg-type]
        ws="none",
        lifespan="off",
        interface="asgi3",
        server_header=False,  # no banner naming the software or its version
        proxy_headers=False,
        access_log=False,  # mlmon logs events worth knowing, not requests
        log_config=None,
        timeout_keep_alive=limits.idle_timeout,
        timeout_graceful_shutdown=limits.shutdown_grace,
        ssl_context_factory=(lambda _config, _default: context) if context is not None else None,
    )


def start_snapshots(config: MlmonConfig, exporter: Exporter) -> Snapshotter | None:
    """Restore the last snapshot (before any traffic) and save periodically, when exporter.state_dir is set."""
    state_dir = config.state_dir()
    if state_dir is None:
        return None
    # The store is looked up at each save: a reload (SIGHUP, /-/reload) swaps in a new one.
    snapshotter = Snapshotter(
        state_dir / SNAPSHOT_FILE, lambda: exporter.store, {"stats": exporter.stats}, config.exporter.snapshot_interval
    )
    snapshotter.restore()
    snapshotter.start()
    return snapshotter


def start(config: MlmonConfig, metrics_listen: str | None = None, ingest_listen: str | None = None,
          options: ServeOptions | None = None) -> RunningExporter:
    """Start both listeners on an event loop thread; ports of 0 pick free ones (tests)."""
    options = options or ServeOptions()
    # uvicorn warns once per malformed request; mlmon counts those instead of flooding the log.
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
    asyncio_log = logging.getLogger("asyncio")
    if not any(isinstance(f, AcceptErrorFilter) for f in asyncio_log.filters):
        asyncio_log.addFilter(AcceptErrorFilter())
    tune_gc()  # young collections sized for an ingest request (gc_tuning.py)
    exporter = Exporter(config, StateStore(config, load_profiles(config)))
    exporter.snapshotter = start_snapshots(config, exporter)
    limits = config.exporter
    token_file = options.ingest_bearer_token_file or limits.ingest_bearer_token_file
    if token_file and options.ingest_bearer_token_file is None:
        token_file = str(config.base_dir / token_file)  # relative to mlmon.yaml, like reference paths
    running = RunningExporter(exporter, [], [], [], options)
    priority = ScrapePriority()
    metrics = Listener("metrics", exporter, create_metrics_app(exporter), limits.metrics_threads,
                       web=WebConfigSource(options.web_config_file) if options.web_config_file else None,
                       reload=running.reload, priority=priority,
                       admin_token=TokenFile(config.base_dir / limits.admin_bearer_token_file)
                       if limits.admin_bearer_token_file else None)
    ingest = Listener("ingest", exporter, create_ingest_app(exporter), limits.ingest_threads,
                      web=WebConfigSource(options.ingest_web_config_file) if options.ingest_web_config_file else None,
                      token=TokenFile(token_file) if token_file else None, priority=priority)
    running.listeners = [metrics, ingest]
    cap = fd_cap()
    for listener in running.listeners:
        listener.fd_cap = cap
    if cap is not None and cap < limits.max_connections:
        log.warning("the open-files limit allows %d connections per listener, fewer than max_connections=%d: "
                    "connections beyond %d are refused", cap, limits.max_connections, cap)
    uvicorn_configs = [_uvicorn_config(listener, config) for listener in running.listeners]
    running.sockets = [bind(metrics_listen or limits.metrics_listen), bind(ingest_listen or limits.ingest_listen)]
    running.servers = [ListenerServer(c, s, limits.header_timeout) for c, s in zip(uvicorn_configs, running.sockets)]
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(asyncio.gather(*(server.serve() for server in running.servers)))
        finally:
            loop.close()

    running.loop = loop
    running.thread = threading.Thread(target=run, name="mlmon-http", daemon=True)
    running.thread.start()
    deadline = time.monotonic() + 10
    while not all(s.started for s in running.servers) and running.thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    if not all(s.started for s in running.servers):
        running.stop(0)
        raise OSError("the HTTP listeners did not start")
    return running


FD_RESERVE = 128  # files, pipes, the listeners, a reload's reads: what connections must leave free


def raise_fd_limit(config: MlmonConfig) -> None:
    """Lift the soft open-files limit towards the hard one (as Go programs do), enough for both connection caps."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * config.exporter.max_connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = hard if hard == resource.RLIM_INFINITY else min(hard, max(wanted, soft))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def fd_cap() -> int | None:
    """Connections per listener that the open-files limit allows; below it the cap refuses, so accept()
    never fails with EMFILE (issue 16: at the fd limit werkzeug's accept loop spun and both ports hung)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    return max(8, (soft - FD_RESERVE) // 2)


def serve(config: MlmonConfig, options: ServeOptions | None = None) -> None:
    """Run until SIGTERM or SIGINT; SIGHUP reloads."""
    options = options or ServeOptions()
    inbox = SignalInbox({*STOP_SIGNALS, signal.SIGHUP})  # before any server thread starts (signals.py)
    raise_fd_limit(config)
    running = start(config, options.metrics_listen, options.ingest_listen, options)
    log.info(
        "mlmon exporter serving metrics on %s and ingest on %s for %d model(s)",
        options.metrics_listen or config.exporter.metrics_listen, options.ingest_listen or config.exporter.ingest_listen,
        len(config.models),
    )
    while True:
        received = inbox.wait()
        if received == signal.SIGHUP:
            running.reload()
            continue
        break
    grace = running.exporter.config.exporter.shutdown_grace
    log.info("%s: draining requests in flight for at most %d s", signal.Signals(received).name, grace)
    watchdog = threading.Timer(grace + 2.0, _hard_exit, args=(grace,))
    watchdog.daemon = True
    watchdog.start()
    running.stop(grace)
    log.info("stopped")
    logging.shutdown()
    # Worker threads still inside a request after the grace period would make the interpreter's
    # exit wait for them (concurrent.futures joins its threads at exit); the deadline wins.
    os._exit(0)


def _hard_exit(grace: float) -> None:
    log.error("requests still in flight %.0f s after shutdown began; exiting anyway", grace)
    logging.shutdown()
    os._exit(1)
