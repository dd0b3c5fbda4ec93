"""`pdp serve --workers N`: a supervisor and N worker processes sharing one port.

The supervisor reserves the port (a bound, never listening SO_REUSEPORT socket, which also
turns port 0 into a concrete port), creates the PROMETHEUS_MULTIPROC_DIR the workers write
their metrics to, and starts the workers with the `spawn` method: fresh interpreters, so
each has its own event loop, gRPC core and Redis pool. Each worker binds the port with
SO_REUSEPORT and the kernel spreads connections across them. Once every worker reports
ready the supervisor serves /metrics (all workers' values combined) and prints
`listening on HOST:PORT`.

A worker that dies is logged and started again (after 0.1 s, doubling up to 10 s while
replacements keep dying young); a worker that cannot start at all (an invalid policy set,
a port in use) makes the supervisor refuse to start. SIGHUP is passed on to the workers
(each reloads); SIGTERM and SIGINT stop them gracefully and end the supervisor, which
removes the metrics folder. A worker whose supervisor vanished stops by itself.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Final

import structlog
from prometheus_client import multiprocess

from pdp.config import Settings
from pdp.errors import StartupError
from pdp.observability.logging import configure_logging
from pdp.observability.metrics import WORKER_RESTARTS, multiprocess_registry, start_metrics_server
from pdp.policy.diagnostics import PolicySetError
from pdp.runtime.app import run_event_loop, serve

YOUNG_S: Final = 10.0  # a worker dying sooner than this after its start backs off restarts
MAX_BACKOFF_S: Final = 10.0
STOP_MARGIN_S: Final = 5.0  # past --grace, how long a worker gets before it is killed
_log = structlog.get_logger(__name__)


def supervise(settings: Settings, announce: bool = True) -> int:
    """Run `settings.workers` workers until SIGTERM or SIGINT; the exit code."""
    directory = tempfile.mkdtemp(prefix="pdp-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by the workers
    reservations: list[socket.socket] = []
    try:
        reservation, listen = _reserve(settings.listen)
        reservations.append(reservation)
        http_listen = settings.http_listen
        if http_listen:  # the forward-auth port is shared by the workers alike
            reservation, http_listen = _reserve(http_listen)
            reservations.append(reservation)
        shared = dataclasses.replace(settings, listen=listen, http_listen=http_listen)
        return _Supervisor(shared, directory).run(announce)
    finally:
        for reservation in reservations:
            reservation.close()
        shutil.rmtree(directory, ignore_errors=True)


def _reserve(listen: str) -> tuple[socket.socket, str]:
    """A bound SO_REUSEPORT socket on `listen`, and HOST:PORT with the port it got."""
    host, _, port = listen.rpartition(":")
    bare = host.strip("[]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            bare, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        raise StartupError(f"--listen {listen}: cannot listen: {exc.strerror or exc}") from None
    return sock, f"{host}:{sock.getsockname()[1]}"


@dataclasses.dataclass
class _Slot:
    """One worker position: its current process and restart bookkeeping."""

    index: int
    process: BaseProcess | None = None
    conn: Connection | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive deaths of young workers
    restart_at: float | None = None
    ready: bool = False


class _Supervisor:
    def __init__(self, settings: Settings, directory: str) -> None:
        self._settings = settings
        self._directory = directory
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._signals: list[int] = []
        self._serving = False

    def run(self, announce: bool) -> int:
        wake_read, wake_write = socket.socketpair()
        wake_write.setblocking(False)
        previous_fd = signal.set_wakeup_fd(wake_write.fileno())
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda signum, _: self._signals.append(signum))
        metrics_server = None
        try:
            for slot in self._slots:
                self._start(slot, restarted=False)
            while True:
                if self._signals and not self._handle_signals():
                    break
                if not self._serving and all(s.ready for s in self._slots):
                    metrics_server = self._announce(announce)
                if not self._watch(wake_read):
                    return 1
            return self._stop()
        finally:
            signal.set_wakeup_fd(previous_fd)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            self._stop()
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            wake_read.close()
            wake_write.close()

    def _announce(self, announce: bool) -> Any:
        self._serving = True
        settings = self._settings
        server = None
        if settings.metrics_port:
            registry = multiprocess_registry(self._directory)
            server = start_metrics_server(settings.host, settings.metrics_port, registry)
        _log.info("supervising", listen=settings.listen, workers=len(self._slots))
        if announce:
            print(f"listening on {settings.listen}", flush=True)
        return server

    def _handle_signals(self) -> bool:
        """Act on the signals received; False once asked to stop."""
        received, self._signals[:] = list(self._signals), []
        for signum in received:
            if signum == signal.SIGHUP:
                for slot in self._slots:
                    if slot.process is not None and slot.process.pid is not None:
                        os.kill(slot.process.pid, signal.SIGHUP)
            else:
                return False
        return True

    def _watch(self, wake: socket.socket) -> bool:
        """Wait for a worker event, a signal or a due restart; False if start-up failed."""
        now = time.monotonic()
        due = [s.restart_at for s in self._slots if s.restart_at is not None]
        timeout = max(0.0, min(due) - now) if due else None
        waitables: list[object] = [wake]
        for slot in self._slots:
            if slot.process is not None:
                waitables.append(slot.process.sentinel)
            if slot.conn is not None:
                waitables.append(slot.conn)
        ready = wait(waitables, timeout)  # type: ignore[arg-type]
        if wake in ready:
            wake.recv(4096)
        for slot in self._slots:
            if slot.conn is not None and slot.conn in ready:
                self._message(slot)
            if slot.process is not None and slot.process.sentinel in ready:
                if not self._serving:
                    _log.error("worker_failed_to_start", worker=slot.index)
                    return False
                self._died(slot)
            if slot.restart_at is not None and slot.restart_at <= time.monotonic():
                self._start(slot, restarted=True)
        return True

    def _message(self, slot: _Slot) -> None:
        assert slot.conn is not None
        try:
            kind, _ = slot.conn.recv()
        except (EOFError, OSError):  # the worker is gone; its sentinel says so too
            slot.conn.close()
            slot.conn = None
            return
        if kind == "ready":
            slot.ready = True
            if self._serving:
                _log.info(
                    "worker_replaced", worker=slot.index, pid=slot.process and slot.process.pid
                )

    def _start(self, slot: _Slot, *, restarted: bool) -> None:
        parent_end, child_end = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker_main,
            args=(self._settings, slot.index, child_end, os.getpid(), restarted),
            name=f"pdp-worker-{slot.index}",
        )
        process.start()
        child_end.close()
        slot.process, slot.conn = process, parent_end
        slot.started_at, slot.restart_at, slot.ready = time.monotonic(), None, False
        _log.info("worker_started", worker=slot.index, pid=process.pid, restarted=restarted)

    def _died(self, slot: _Slot) -> None:
        process = slot.process
        assert process is not None
        process.join()
        if process.pid is not None:
            multiprocess.mark_process_dead(process.pid, self._directory)  # type: ignore[no-untyped-call]
        young = time.monotonic() - slot.started_at < YOUNG_S
        slot.failures = slot.failures + 1 if young else 0
        delay = min(0.1 * 2**slot.failures, MAX_BACKOFF_S)
        _log.error(
            "worker_died",
            worker=slot.index,
            pid=process.pid,
            exitcode=process.exitcode,
            restart_in_s=delay,
        )
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.ready = None, None, False
        slot.restart_at = time.monotonic() + delay

    def _stop(self) -> int:
        """Stop every worker gracefully (kill those past --grace); 0 if all exited cleanly."""
        running = [s.process for s in self._slots if s.process is not None]
        if not running:
            return 0
        _log.info("stopping", grace_s=self._settings.grace_s, workers=len(running))
        for process in running:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._settings.grace_s + STOP_MARGIN_S
        clean = True
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                _log.error("worker_killed", pid=process.pid)
                process.kill()
                process.join()
            clean = clean and process.exitcode == 0
        for slot in self._slots:
            if slot.conn is not None:
                slot.conn.close()
            slot.process, slot.conn = None, None
        _log.info("stopped")
        return 0 if clean else 1


def _worker_main(
    settings: Settings, index: int, conn: Connection, parent_pid: int, restarted: bool
) -> None:
    """A worker process: serve on the shared port until told to stop."""
    configure_logging(json=settings.log_format == "json", fields={"worker": index})
    if restarted:
        WORKER_RESTARTS.inc()

    def ready(_port: int) -> None:
        conn.send(("ready", os.getpid()))

    try:
        run_event_loop(
            serve(settings, ready, shared_port=True, metrics=False, parent_pid=parent_pid)
        )
    except PolicySetError:
        sys.exit(1)  # the diagnostics were logged
    except StartupError as exc:
        _log.error("worker_cannot_start", error=str(exc))
        sys.exit(1)
    finally:
        conn.close()
