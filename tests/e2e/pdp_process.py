"""A real `pdp serve` subprocess for end-to-end tests: free ports, collected output, /metrics.

`PdpProcess` starts `python -m pdp serve` on 127.0.0.1 with free gRPC and metrics ports,
reads its stdout and stderr on threads (stderr records parsed as JSON), and offers waits on
both, a parsed /metrics and signals. It kills the process if a test leaves it running.
`Watcher` follows one grpc.health.v1 Watch stream.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from pdp.v1 import pdp_pb2 as pb

START_TIMEOUT_S = 30.0
# Reconnect fast: the tests connect while the server is still starting.
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 200),
]
Record = dict[str, Any]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[Any], grace_s: float = 10) -> None:
    """SIGTERM `process` if it still runs, give it `grace_s` to exit, then kill it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Metrics:
    """One scrape of /metrics, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels`."""
        return sum(
            value
            for sample, have, value in self.samples
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def labels(self, name: str) -> list[dict[str, str]]:
        """The label sets of the samples called `name`."""
        return [have for sample, have, _ in self.samples if sample == name]


class PdpProcess:
    """`pdp serve --policies POLICIES --listen 127.0.0.1:PORT --metrics-port M ARGS...`."""

    def __init__(self, policies: Path, *args: str, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.metrics_port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "pdp", "serve", "--policies", str(policies)]
        command += ["--listen", self.address, "--metrics-port", str(self.metrics_port), *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        self.stdout: list[str] = []
        self.records: list[Record] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._read, args=(self.process.stdout, False), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, True), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, stream: Any, is_stderr: bool) -> None:
        for line in stream:
            with self._changed:
                if is_stderr:
                    self.stderr.append(line)
                    with contextlib.suppress(ValueError):
                        self.records.append(json.loads(line))
                else:
                    self.stdout.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _wait(self, found: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := found()):
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._alive_readers()):
                    pytest.fail(f"{what}: not seen in {timeout}s; stderr:\n{''.join(self.stderr)}")
                self._changed.wait(min(left, 0.1))
            return result

    def _alive_readers(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> PdpProcess:
        """Wait for `listening on HOST:PORT`."""
        self._wait(
            lambda: any(line.startswith("listening on ") for line in self.stdout),
            timeout,
            "listening on",
        )
        return self

    def wait_for(self, event: str, timeout: float = 20.0, **fields: Any) -> Record:
        """The first stderr record of `event` whose fields include `fields`."""

        def found() -> Record | None:
            return next((r for r in self.matching(event, **fields)), None)

        record: Record = self._wait(found, timeout, f"log event {event} {fields}")
        return record

    def matching(self, event: str, **fields: Any) -> Iterator[Record]:
        """The stderr records of `event` whose fields include `fields`, so far."""
        for record in list(self.records):
            if record.get("event") == event and all(record.get(k) == v for k, v in fields.items()):
                yield record

    def metrics(self) -> Metrics:
        """Scrape /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            return Metrics(reply.read().decode())

    def signal(self, signum: int) -> None:
        """Send `signum` to the pdp process."""
        self.process.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit code (after the output has been read to its end)."""
        self.signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout)
        return code

    def __enter__(self) -> PdpProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for thread in self._threads:
            thread.join(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class Watcher:
    """Collects the statuses of one Health.Watch stream on a thread."""

    def __init__(self, address: str, service: str) -> None:
        self._channel = grpc.insecure_channel(address, options=FAST_RECONNECT)
        stub = health_pb2_grpc.HealthStub(self._channel)
        self._stream: Any = stub.Watch(
            health_pb2.HealthCheckRequest(service=service), wait_for_ready=True, timeout=60
        )
        self.statuses: list[int] = []
        self.error: grpc.StatusCode | None = None  # how the stream ended, if not with OK
        self.ended = threading.Event()
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self._stream:
                with self.changed:
                    self.statuses.append(response.status)
                    self.changed.notify_all()
        except grpc.RpcError as error:
            self.error = error.code()
        finally:
            self.ended.set()
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[int]:
        """The statuses once there are `count` of them."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.statuses) >= count, timeout)
            return list(self.statuses)

    def close(self) -> None:
        """Cancel the stream and close the channel."""
        self._stream.cancel()
        self._channel.close()


def requests_of(sign_ins: dict[str, dict[str, Any]]) -> dict[str, pb.EvaluateRequest]:
    """The shared sign-ins as EvaluateRequests, by name."""
    return {
        name: json_format.ParseDict(data, pb.EvaluateRequest()) for name, data in sign_ins.items()
    }


def channel(address: str) -> grpc.Channel:
    """A plaintext channel to `address`."""
    return grpc.insecure_channel(address, options=FAST_RECONNECT)
