"""One pipelined Redis connection: RESP over an asyncio protocol, parsed by hiredis.

Every call of a worker to one Redis node shares one connection: the commands of one event
loop turn go out in ONE write (no waiting for earlier replies; one system call and one
wake-up of Redis for all of them), replies come back in the same order and resolve the
callers' futures first in, first out. No pool, no lock, no per-call timeout object: a call
costs a future and a deque entry.

Connecting is lazy and in the background: calls made meanwhile are queued and written right
after the handshake (AUTH, SELECT, CLIENT SETNAME and the caller's own commands, such as
SCRIPT LOAD), in the same write, so they are answered after it.

Deadlines. Each call carries a deadline (time.monotonic), pushed back by however long its
command waited for the turn's write (that wait is pdp's own, not Redis's). One timer per
connection, armed for the earliest deadline, fails overdue calls in two steps so that a
late event loop is never blamed on Redis: when it fires, the calls overdue then are only
marked; they fail if their reply is still missing one millisecond later, after the loop has
read its sockets again (uvloop runs due timers BEFORE reading sockets in each turn, so a
check at the timer alone would fail replies already there). A reply that was there in time
but waited for a busy loop is a success (counted as a late read). A failed call's reply
still arrives later and is dropped in order. A connection whose oldest reply is `stale_s`
overdue is dropped and reconnected (a silent network partition keeps TCP up forever).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hiredis

_CONFIRM_S = 0.001  # from the deadline timer to the verdict: the loop reads its sockets between


class ReplyError(Exception):
    """An error reply of Redis (e.g. NOSCRIPT, MOVED, WRONGPASS), as hiredis builds it."""


class LinkError(ConnectionError):
    """The connection could not be made, or broke, with calls in flight (or was closed)."""


class DeadlineError(TimeoutError):
    """No reply by the first read after the call's deadline."""


def encode(*parts: bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    out.extend(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
    return b"".join(out)


class Call:
    """One command in flight: its reply's future, deadline, and when it was sent and read.

    `sent` is when its command was written and `read` when its reply was read off the
    socket (time.monotonic): `read - sent` is Redis's time (and the network's), which a
    busy event loop stretches by at most one turn; the caller's own resumption comes after.
    """

    __slots__ = ("deadline", "future", "read", "sent")

    def __init__(self, future: asyncio.Future[Any], deadline: float, sent: float) -> None:
        self.future = future
        self.deadline = deadline
        self.sent = sent
        self.read = 0.0


class _Link(asyncio.Protocol):
    """One socket of a Connection: its replies resolve its own calls, in order."""

    def __init__(self, owner: Connection) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.pending: deque[Call] = deque()
        self._reader = hiredis.Reader(replyError=ReplyError)
        self._out: list[bytes] = []  # commands of this loop turn, written in one go
        self._unsent: list[Call] = []  # their calls

    def write(self, call: Call, command: bytes) -> None:
        """Queue `command` for this loop turn's write (one system call for all of them)."""
        self.pending.append(call)
        if not self._out:
            asyncio.get_running_loop().call_soon(self.flush)
        self._out.append(command)
        self._unsent.append(call)

    def flush(self) -> None:
        """Write the queued commands; their deadlines start now (the wait was pdp's own)."""
        out, unsent = self._out, self._unsent
        if not out or self.transport is None:
            return
        self._out, self._unsent = [], []
        self.transport.write(b"".join(out))
        now = time.monotonic()
        for call in unsent:
            call.deadline += now - call.sent
            call.sent = now

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.owner._opening = self  # the attempt's socket, for its owner to close if need be

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        pending = self.pending
        now = time.monotonic()
        while (reply := reader.gets()) is not False:
            call = pending.popleft()
            future = call.future
            if future.done():  # failed past its deadline, or cancelled: drop its reply
                continue
            call.read = now
            if isinstance(reply, ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)
            if now > call.deadline:
                self.owner.late_reads += 1
                self.owner.on_late_read()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.owner._lost(self, exc)

    def fail(self, exc: Exception) -> None:
        """Fail every call still waiting for a reply on this socket."""
        self._out, self._unsent = [], []
        pending, self.pending = self.pending, deque()
        for call in pending:
            if not call.future.done():
                call.future.set_exception(exc)


class Connection:
    """A pipelined connection to one Redis node (TCP or TLS), reconnected on demand."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        handshake: Sequence[bytes] = (),
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout_s: float = 1.0,
        stale_s: float = 1.0,
        on_connect: Callable[[list[Any]], None] | None = None,
        on_late_read: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.handshake = tuple(handshake)  # sent first on every new socket
        self._ssl = ssl_context
        self._connect_timeout_s = connect_timeout_s
        self._stale_s = stale_s
        self._on_connect = on_connect  # gets the handshake's replies
        self._link: _Link | None = None  # the socket in use, once its handshake is written
        self._opening: _Link | None = None  # the socket a connection attempt just opened
        self._connecting: asyncio.Task[None] | None = None
        self._queue: list[Call] = []  # calls waiting for a socket
        self._queued: list[bytes] = []  # their commands
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # the deadline the timer is armed for
        self._overdue_at: float | None = None  # when the timer found calls overdue
        self._closed = False
        self.late_reads = 0  # replies read after their deadline (successes, not failures)
        self.on_late_read = on_late_read or _nothing
        self.last_error = ""

    @property
    def connected(self) -> bool:
        """Whether a socket is up and its handshake written."""
        return self._link is not None

    def send(self, command: bytes, deadline: float) -> Call:
        """Write `command`; its call's future resolves to the reply or fails (ReplyError, ...)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        call = Call(future, deadline, time.monotonic())
        if self._closed:
            future.set_exception(LinkError("connection closed"))
            return call
        link = self._link
        if link is not None:
            link.write(call, command)
        else:
            self._queue.append(call)
            self._queued.append(command)
            if self._connecting is None:
                self._start_connecting(loop)
        if self._timer is None or (deadline < self._timer_at and self._overdue_at is None):
            self._arm(loop, deadline)
        return call

    async def connect(self) -> None:
        """Connect now unless connected, and wait for the handshake's replies.

        Raises LinkError (with a message naming no secret) when it cannot.
        """
        if self._link is not None:
            return
        connecting = self._connecting or self._start_connecting(asyncio.get_running_loop())
        await asyncio.shield(connecting)

    def _start_connecting(self, loop: asyncio.AbstractEventLoop) -> asyncio.Task[None]:
        task = self._connecting = loop.create_task(self._connect())
        task.add_done_callback(_retrieve)  # the calls waiting get the failure, not the loop
        return task

    async def call_all(self, commands: Sequence[bytes], deadline: float) -> list[Any]:
        """Send `commands` (pipelined) and return their replies; raises on the first error."""
        calls = [self.send(command, deadline) for command in commands]
        return [await call.future for call in calls]

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await loop.create_connection(
                    lambda: _Link(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
                # The socket as connection_made registered it: a cancellation landing just as
                # create_connection returns would lose its return value, never the socket.
                link = self._opening
                assert link is not None
                now = time.monotonic()
                handshake = [
                    Call(loop.create_future(), now + self._connect_timeout_s, now)
                    for _ in self.handshake
                ]
                link.pending.extend(handshake)
                link.pending.extend(self._queue)
                assert link.transport is not None
                link.transport.write(b"".join((*self.handshake, *self._queued)))
                self._queue, self._queued = [], []
                self._link = link
                replies = [await call.future for call in handshake]
            if self._on_connect is not None:
                self._on_connect(replies)
        except (OSError, TimeoutError, ReplyError, ssl.SSLError, ValueError) as exc:
            self.last_error = _describe(exc, self._connect_timeout_s)
            failure = LinkError(self.last_error)
            self._drop(self._opening, failure)
            queue, self._queue, self._queued = self._queue, [], []
            for call in queue:
                if not call.future.done():
                    call.future.set_exception(failure)
            raise failure from None
        except BaseException:  # cancelled (closed): the socket must not outlive the attempt
            self._drop(self._opening, LinkError("connection closed"))
            raise
        finally:
            self._connecting = None
            self._opening = None

    def _drop(self, link: _Link | None, failure: Exception) -> None:
        """Stop using `link`: abort its socket and fail its calls."""
        if link is None:
            return
        if self._link is link:
            self._link = None
        if link.transport is not None:
            link.transport.abort()
        link.fail(failure)

    def _lost(self, link: _Link, exc: Exception | None) -> None:
        """A socket closed: if it is the one in use, its calls fail; the next call reconnects."""
        reason = f"connection lost ({exc})" if exc else "connection closed by the server"
        if self._link is link:
            self._link = None
            self.last_error = reason
        link.fail(LinkError(reason))

    def close(self) -> None:
        """Close the connection; calls in flight fail; later calls fail at once."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._connecting is not None:
            self._connecting.cancel()
        closed = LinkError("connection closed")
        if self._opening is not None and self._opening is not self._link:
            self._drop(self._opening, closed)
        link, self._link = self._link, None
        if link is not None:
            if link.transport is not None:  # abort: nothing queued is wanted any more, and a
                link.transport.abort()  # graceful close waits for a peer that may be gone
            link.fail(closed)
        queue, self._queue, self._queued = self._queue, [], []
        for call in queue:
            if not call.future.done():
                call.future.set_exception(closed)

    # -- deadlines ---------------------------------------------------------------------

    def _waiting(self) -> list[Call]:
        pending = list(self._link.pending) if self._link is not None else []
        return pending + self._queue

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = loop.call_later(max(0.0, deadline - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        """The earliest deadline passed: note who is overdue, judge after the next read."""
        self._timer = None
        now = time.monotonic()
        if any(not c.future.done() and c.deadline <= now for c in self._waiting()):
            self._overdue_at = now
            self._timer_at = now + _CONFIRM_S
            self._timer = asyncio.get_running_loop().call_later(_CONFIRM_S, self._confirm)
            return
        self._rearm()

    def _confirm(self) -> None:
        """Fail the calls that were overdue at the timer and are still unanswered."""
        self._timer = None
        overdue_at, self._overdue_at = self._overdue_at, None
        assert overdue_at is not None
        now = time.monotonic()
        for call in self._waiting():
            if call.deadline <= overdue_at and not call.future.done():
                budget_ms = 1000 * (call.deadline - call.sent)
                call.future.set_exception(DeadlineError(f"no reply within {budget_ms:.0f} ms"))
        link = self._link
        stale = link is not None and link.pending and link.pending[0].sent < now - self._stale_s
        if stale:
            self.last_error = f"no reply for {self._stale_s:g} s: reconnecting"
            self._drop(link, LinkError(self.last_error))
        self._rearm()

    def _rearm(self) -> None:
        waiting = [c.deadline for c in self._waiting() if not c.future.done()]
        if waiting:
            self._arm(asyncio.get_running_loop(), min(waiting))


def _nothing() -> None:
    pass


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no connection within {timeout_s * 1000:g} ms"
    if isinstance(exc, ReplyError):
        return f"handshake refused: {exc}"
    return f"{type(exc).__name__}: {exc}"
