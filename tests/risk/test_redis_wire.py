"""The pipelined connection: replies in order, deadlines that never blame a late event loop.

Run on asyncio's loop and on uvloop (which runs due timers BEFORE reading sockets in each
turn, so a deadline checked as soon as its timer fires would fail replies already there).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest
from event_loops import LOOPS, run_on

from pdp.risk.redis_wire import Connection, DeadlineError, LinkError, ReplyError, encode

if TYPE_CHECKING:
    from conftest import RedisServer, Servers

BUDGET_S = 0.005


@LOOPS
def test_replies_resolve_their_calls_in_order(redis_server: RedisServer, loop_name: str) -> None:
    """Pipelined commands get their own replies; an error reply fails only its call."""

    async def scenario() -> list[object]:
        connection = Connection("127.0.0.1", redis_server.port)
        try:
            deadline = time.monotonic() + 2
            commands = [encode(b"ECHO", b"%d" % i) for i in range(100)]
            commands.insert(50, encode(b"NOSUCHCOMMAND"))
            futures = [connection.send(command, deadline).future for command in commands]
            return await asyncio.gather(*futures, return_exceptions=True)
        finally:
            connection.close()

    replies = run_on(loop_name, scenario())
    assert isinstance(replies.pop(50), ReplyError)
    assert replies == [b"%d" % i for i in range(100)]


@LOOPS
def test_a_reply_read_late_because_the_loop_was_blocked_is_a_success(
    redis_servers: Servers, loop_name: str
) -> None:
    """The reply arrives while the loop is blocked just before the deadline timer runs: used.

    Redis is paused when the calls are written; a timer due in the same millisecond as their
    deadline (and armed before it, so it runs first) resumes Redis and blocks the loop for
    30 ms. The deadline timer then finds the calls overdue, but their replies are waiting in
    the socket: they must be read, not failed.
    """
    server = redis_servers.start()

    def wake_and_block() -> None:
        server.resume()
        time.sleep(0.03)

    async def scenario() -> tuple[list[object], int]:
        connection = Connection("127.0.0.1", server.port)
        try:
            await connection.connect()
            server.pause()
            loop = asyncio.get_running_loop()
            loop.call_later(BUDGET_S, wake_and_block)
            deadline = time.monotonic() + BUDGET_S
            futures = [connection.send(encode(b"PING"), deadline).future for _ in range(5)]
            replies = await asyncio.gather(*futures, return_exceptions=True)
            return replies, connection.late_reads
        finally:
            if server.paused:
                server.resume()
            connection.close()

    replies, late = run_on(loop_name, scenario())
    assert replies == [b"PONG"] * 5
    assert late == 5


@LOOPS
def test_no_reply_fails_at_the_deadline_and_the_late_reply_is_dropped(
    redis_servers: Servers, loop_name: str
) -> None:
    """A paused Redis: calls fail just after their deadline; later calls get their own replies."""
    server = redis_servers.start()

    async def scenario() -> tuple[list[float], bytes]:
        connection = Connection("127.0.0.1", server.port)
        try:
            await connection.connect()
            server.pause()
            took = []
            for _ in range(3):
                started = time.monotonic()
                with pytest.raises(DeadlineError):
                    await connection.send(encode(b"ECHO", b"lost"), started + BUDGET_S).future
                took.append(time.monotonic() - started)
            server.resume()
            reply = await connection.send(encode(b"ECHO", b"mine"), time.monotonic() + 2).future
            return took, reply
        finally:
            if server.paused:
                server.resume()
            connection.close()

    took, reply = run_on(loop_name, scenario())
    assert all(t >= BUDGET_S for t in took), took  # never before the deadline
    assert sum(t >= BUDGET_S + 0.02 for t in took) <= 1, took  # one late worker turn at most
    assert reply == b"mine"


def test_a_connection_is_remade_after_the_server_restarts(redis_servers: Servers) -> None:
    """Killed: calls in flight fail as a broken link; the next call reconnects by itself."""
    server = redis_servers.start()

    async def scenario() -> tuple[BaseException | None, bytes, int]:
        connection = Connection(
            "127.0.0.1", server.port, handshake=[encode(b"CLIENT", b"SETNAME", b"pdp-test")]
        )
        try:
            await connection.connect()
            server.kill()
            failure = None
            try:
                await connection.send(encode(b"PING"), time.monotonic() + 1).future
            except LinkError as exc:
                failure = exc
            server.start()
            name = encode(b"CLIENT", b"GETNAME")
            reply = await connection.send(name, time.monotonic() + 1).future
            return failure, reply, len([c for c in [connection] if c.connected])
        finally:
            connection.close()

    failure, name, connected = asyncio.run(scenario())
    assert isinstance(failure, LinkError)
    assert name == b"pdp-test"  # the handshake ran again on the new socket
    assert connected == 1


def test_a_silent_connection_is_dropped_and_remade(redis_servers: Servers) -> None:
    """No reply for `stale_s` (a partition keeps TCP up): the socket is dropped, calls go on."""
    server = redis_servers.start()

    async def scenario() -> bytes:
        connection = Connection("127.0.0.1", server.port, stale_s=0.1)
        try:
            await connection.connect()
            server.pause()
            for _ in range(4):
                with pytest.raises((DeadlineError, LinkError)):
                    await connection.send(encode(b"PING"), time.monotonic() + 0.05).future
            server.resume()
            reply: bytes = await connection.send(encode(b"PING"), time.monotonic() + 2).future
            return reply
        finally:
            if server.paused:
                server.resume()
            connection.close()

    assert asyncio.run(scenario()) == b"PONG"


@LOOPS
def test_closing_while_connecting_leaves_no_socket_open(
    redis_servers: Servers, loop_name: str
) -> None:
    """Closed while its handshake waits on a paused Redis: the socket is closed, calls fail."""
    import gc
    import warnings

    server = redis_servers.start()

    async def scenario() -> BaseException | None:
        connection = Connection("127.0.0.1", server.port, handshake=[encode(b"PING")])
        server.pause()
        try:
            call = connection.send(encode(b"PING"), time.monotonic() + 5)
            for _ in range(50):  # until the socket is open and the handshake written
                await asyncio.sleep(0.01)
                if connection.connected:
                    break
            assert connection.connected
            connection.close()
            try:
                await call.future
            except LinkError as exc:
                return exc
            return None
        finally:
            server.resume()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        failure = run_on(loop_name, scenario())
        gc.collect()
    assert isinstance(failure, LinkError)
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], caught
