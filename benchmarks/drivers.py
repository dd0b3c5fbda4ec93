"""Load generators for gRPC servers on 127.0.0.1, and one measured run of each.

Both send pre-encoded gRPC messages over h2c (a 0 byte, a 4-byte length, the serialized
request; headers `content-type: application/grpc` and `te: trailers`):

- `H2load` (Debian nghttp2-client): h2load sends one body per process, so one process
  per body runs at once, each on one connection with `streams` calls in flight. Meant for
  a handful of bodies (the 12 requests of deploy/ghz/requests.json).
- `H2pool` (`h2pool.c` beside this file, built on first use with cc and libnghttp2): one
  process cycling through any number of bodies over `connections` connections with
  `streams` calls in flight each. Meant for the pool of distinct requests.

A run lasts `warm_up + duration` seconds; the server's CPU time (`proc_cpu`, the server
process and its descendants) is read when the warm-up ends and when the window ends, so
CPU per call is CPU in the window over the calls completed in it. Latency is each call's
time from the client's log. `--pin` runs the clients on CPU 1 (the servers go on CPU 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from proc_cpu import cpu_seconds

H2POOL_SOURCE = Path(__file__).resolve().parent / "h2pool.c"
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
_DONE = re.compile(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded")


@dataclasses.dataclass(frozen=True, slots=True)
class Bodies:
    """The gRPC frames one server gets, on disk: one file each (h2load) and all in one."""

    files: tuple[Path, ...]
    pool: Path

    @classmethod
    def write(cls, folder: Path, frames: Sequence[bytes]) -> Bodies:
        """Write `frames` under `folder` (created) as one file each and as one pool file."""
        folder.mkdir(parents=True, exist_ok=True)
        files = tuple(folder / f"body-{index}.bin" for index in range(len(frames)))
        for path, frame in zip(files, frames, strict=True):
            path.write_bytes(frame)
        pool = folder / "pool.bin"
        pool.write_bytes(b"".join(frames))
        return cls(files, pool)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """A running server and what to send it."""

    name: str  # how the report names it: pdp, null, cerbos
    port: int
    pid: int  # its CPU is read from /proc/<pid> (and descendants)
    method: str  # the gRPC path, /package.Service/Method
    bodies: Bodies


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """One measured window against one server."""

    server: str
    load: str  # "saturation", or the rate asked for
    requests: int  # calls completed in the window
    failed: int  # of those, answered with an error (HTTP, or gRPC for h2pool)
    seconds: float
    latencies_us: tuple[int, ...]
    cpu_s: float  # the server's CPU time in the window

    @property
    def throughput(self) -> float:
        """Completed calls per second."""
        return self.requests / self.seconds

    @property
    def cpu_us_per_call(self) -> float:
        """Server CPU µs per completed call."""
        return self.cpu_s * 1e6 / max(self.requests, 1)

    def percentile_ms(self, q: float) -> float:
        """The nearest-rank `q` quantile of the latencies, in ms."""
        return percentile_ms(self.latencies_us, q)


def percentile_ms(latencies_us: Sequence[int], q: float) -> float:
    """The nearest-rank `q` quantile of `latencies_us`, in ms (nan when there are none)."""
    if not latencies_us:
        return math.nan
    ordered = sorted(latencies_us)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """How long a run lasts and where its client runs."""

    duration: float
    warm_up: float
    streams: int
    client_cpu: int | None  # taskset CPU for the load generator, None: anywhere


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """`command` run on one CPU (taskset), or as it is when `cpu` is None."""
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def _sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


def _milliseconds(seconds: float) -> str:
    """A duration as h2load reads it (it takes whole units: 1500ms, not 1.5)."""
    return f"{round(seconds * 1000)}ms"


def _read_log(path: Path) -> tuple[list[int], int]:
    """Latencies (µs) and failed calls from an h2load or h2pool log file."""
    latencies, failed = [], 0
    for line in path.read_text("utf-8").splitlines():
        fields = line.split("\t")
        latencies.append(int(fields[2]))
        # h2load: start, HTTP status, µs; h2pool adds grpc-status.
        failed += fields[1] != "200" or (len(fields) > 3 and fields[3] != "0")
    return latencies, failed


class _Driver:
    """What both drivers share: start clients, read the server's CPU around the window."""

    name = ""

    def __init__(self, tool: str, window: Window) -> None:
        self.tool = tool
        self.window = window

    def shape(self, target: Target) -> str:
        """Connections x streams, as the report prints it."""
        raise NotImplementedError

    def _commands(self, target: Target, rate: float | None) -> list[tuple[list[str], Path]]:
        raise NotImplementedError

    def measure(self, target: Target, rate: float | None) -> Run:
        """One run against `target`: saturation (rate None) or `rate` calls per second."""
        window = self.window
        launched = []
        for command, log in self._commands(target, rate):
            log.unlink(missing_ok=True)  # h2load appends to an existing log file
            process = subprocess.Popen(
                pinned(command, window.client_cpu),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            launched.append((process, log))
        start = time.monotonic()
        _sleep_until(start + window.warm_up)
        cpu_before = cpu_seconds(target.pid)
        _sleep_until(start + window.warm_up + window.duration)
        cpu_after = cpu_seconds(target.pid)
        requests, failed, latencies = 0, 0, []
        for process, log in launched:
            out, _ = process.communicate(timeout=window.duration + window.warm_up + 60)
            done = _DONE.search(out)
            if process.returncode != 0 or done is None:
                raise SystemExit(f"{self.name} failed ({process.returncode}):\n{out}")
            requests += int(done[1])
            more, failures = _read_log(log)
            latencies += more
            failed += max(failures, int(done[1]) - int(done[2]))
        load = "saturation" if rate is None else f"{rate:,.0f} req/s"
        return Run(
            target.name,
            load,
            requests,
            failed,
            window.duration,
            tuple(latencies),
            cpu_after - cpu_before,
        )


class H2load(_Driver):
    """h2load, one process and connection per body, `streams` calls in flight each."""

    name = "h2load"

    def shape(self, target: Target) -> str:
        """One connection per body."""
        return f"{len(target.bodies.files)}x{self.window.streams}"

    def _commands(self, target: Target, rate: float | None) -> list[tuple[list[str], Path]]:
        window, files = self.window, target.bodies.files
        commands = []
        for body in files:
            command = [self.tool, "-c", "1", "-m", str(window.streams)]
            command += ["-D", _milliseconds(window.duration)]
            if window.warm_up:
                command += ["--warm-up-time", _milliseconds(window.warm_up)]
            if rate is not None:
                command += ["--rps", f"{rate / len(files):.3f}"]
            log = body.with_suffix(".log")
            command += ["-d", str(body), "--log-file", str(log)]
            for header in GRPC_HEADERS:
                command += ["-H", header]
            command.append(f"http://127.0.0.1:{target.port}{target.method}")
            commands.append((command, log))
        return commands


class H2pool(_Driver):
    """h2pool: every body in turn, over `connections` connections."""

    name = "h2pool"

    def __init__(self, tool: str, window: Window, connections: int) -> None:
        super().__init__(tool, window)
        self.connections = connections

    def shape(self, target: Target) -> str:
        """The connections asked for, whatever the number of bodies."""
        return f"{self.connections}x{self.window.streams}"

    def _commands(self, target: Target, rate: float | None) -> list[tuple[list[str], Path]]:
        window = self.window
        log = target.bodies.pool.with_suffix(".log")
        command = [self.tool, "-p", str(target.port), "-P", target.method]
        command += ["-b", str(target.bodies.pool), "-c", str(self.connections)]
        command += ["-m", str(window.streams), "-D", f"{window.duration:g}"]
        command += ["-w", f"{window.warm_up:g}", "-l", str(log)]
        if rate is not None:
            command += ["-r", f"{rate:.3f}"]
        return [(command, log)]


def cache_dir() -> Path:
    """Where benchmark tools are kept between runs ($XDG_CACHE_HOME/pdp-bench)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pdp-bench"


def build_h2pool(cache: Path | None = None) -> str:
    """The h2pool binary for the current h2pool.c, compiled into the cache when missing."""
    source = H2POOL_SOURCE.read_bytes()
    folder = (cache or cache_dir()) / "h2pool" / hashlib.sha256(source).hexdigest()[:16]
    binary = folder / "h2pool"
    if binary.exists():
        return str(binary)
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("h2pool needs a C compiler (apt-get install gcc libnghttp2-dev)")
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"h2pool.{os.getpid()}"
    done = subprocess.run(
        [compiler, "-O2", "-o", str(partial), str(H2POOL_SOURCE), "-lnghttp2"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"cannot build h2pool (apt-get install gcc libnghttp2-dev):\n{done.stderr[-2000:]}"
        )
    partial.replace(binary)  # atomic: a concurrent build never sees half a binary
    return str(binary)
