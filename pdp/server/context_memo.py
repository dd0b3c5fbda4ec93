"""EvaluateRequest bytes -> SignInContext, remembered by content.

A gateway asks about the same sign-in again and again (every request of a session is
checked), and only the request id and the time differ between those calls. Protobuf
writers emit fields in field-number order, so a request starts with `request_id` (field 1)
and `time` (field 2); `ContextMemo.context` reads those two by hand and looks the rest of
the bytes up: when the same content was mapped before, the SignInContext is rebuilt from its
remembered values with this call's id and time, with no parse and no validation (the values
were validated when they were first seen, and the same bytes give the same values). Else
the request is parsed and mapped by `convert_in` and the result remembered, a refusal too.
Contexts of one remembered content share a `ContentMemo`, in which the engine keeps what it
works out from the content alone.

Bytes that do not start that way, or whose rest sets field 1 or 2 again (protobuf's last
value wins), are mapped without the memo. The memo is bounded by entries and by bytes and
forgets its oldest entries first, an eighth at a time (`pdp.bounded`); `hits` and
`misses` are for benchmarks.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Final

from google.protobuf.message import DecodeError

from pdp import context_values as cv
from pdp.bounded import batch_for, forget_oldest
from pdp.context import ContentMemo, SignInContext
from pdp.errors import InvalidRequest
from pdp.server.convert_in import to_context
from pdp.v1 import pdp_pb2 as pb

MAX_ENTRIES: Final = 16_384
MAX_BYTES: Final = 32 * 1024 * 1024  # of remembered request content
MAX_ENTRY_BYTES: Final = 64 * 1024  # larger requests (thousands of groups) are not kept
_REQUEST_ID_TAG: Final = 0x0A  # field 1, length-delimited
_TIME_TAG: Final = 0x12  # field 2, length-delimited
_SECONDS_TAG: Final = 0x08  # Timestamp.seconds, varint
_NANOS_TAG: Final = 0x10  # Timestamp.nanos, varint
_FIELDS: Final = tuple(f.name for f in dataclasses.fields(SignInContext))
# A context is (request_id, time, *content, memo): the content is remembered, and each
# remembered content gets one ContentMemo, which the engine fills.
assert _FIELDS[:2] == ("request_id", "time")
assert _FIELDS[-1] == "memo"
_CONTENT_FIELDS: Final = _FIELDS[2:-1]
_content_of: Final = operator.attrgetter(*_CONTENT_FIELDS)  # one C call, not a generator

Content = tuple[object, ...]  # a SignInContext's values after request_id and time


class ContextMemo:
    """Maps request bytes to SignInContexts, remembering the content it has mapped."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._entries: dict[bytes, Content | InvalidRequest] = {}
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def context(self, body: bytes, now: float) -> SignInContext:
        """The SignInContext of a serialized EvaluateRequest; raises InvalidRequest."""
        envelope = _envelope(body)
        if envelope is None:
            return to_context(parse(body), now)
        rid, seconds, nanos, start = envelope
        key = body[start:]
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            found = self._map(key, rid, seconds, nanos, now)
        else:
            self.hits += 1
        if isinstance(found, InvalidRequest):
            raise found
        return SignInContext(
            cv.request_id(rid),
            now if seconds is None else _time(seconds, nanos),
            *found,  # type: ignore[arg-type]
        )

    def _map(
        self, key: bytes, rid: str, seconds: int | None, nanos: int, now: float
    ) -> Content | InvalidRequest:
        """Map the content `key` (remembering it), with this call's id and time."""
        rest = parse(key)
        if rest.request_id or rest.HasField("time"):  # set twice: the later one counts
            raise _Unmemoisable
        try:
            ctx = to_context(rest, now)  # the id and time are checked per call, by context()
        except InvalidRequest as exc:
            found: Content | InvalidRequest = exc
        else:
            found = (*_content_of(ctx), ContentMemo())
        self._remember(key, found)
        return found

    def _remember(self, key: bytes, found: Content | InvalidRequest) -> None:
        size = len(key)
        if size > MAX_ENTRY_BYTES:
            return
        entries = self._entries
        batch = batch_for(self._max_entries)
        while entries and (
            len(entries) >= self._max_entries or self._bytes + size > self._max_bytes
        ):
            for oldest in forget_oldest(entries, batch):
                self._bytes -= len(oldest)
        entries[key] = found
        self._bytes += size


class _Unmemoisable(Exception):  # noqa: N818 - a signal inside this module, never raised out
    """The request's content sets its id or time again: map it whole, without the memo."""


def map_request(memo: ContextMemo | None) -> Callable[[bytes, float], SignInContext]:
    """The function mapping request bytes to a context: through `memo`, or without one."""
    if memo is None:
        return lambda body, now: to_context(parse(body), now)

    def mapped(body: bytes, now: float) -> SignInContext:
        try:
            return memo.context(body, now)
        except _Unmemoisable:
            return to_context(parse(body), now)

    return mapped


def parse(body: bytes) -> pb.EvaluateRequest:
    """The EvaluateRequest in `body`; undecodable bytes are an InvalidRequest."""
    try:
        return pb.EvaluateRequest.FromString(body)
    except DecodeError:
        raise InvalidRequest("request", "not a valid pdp.v1.EvaluateRequest message") from None


def request_id_of(body: bytes) -> str:
    """The request id at the start of `body`, cut to a usable length ("" when there is none)."""
    envelope = _envelope(body)
    rid = "" if envelope is None else envelope[0]
    return rid if len(rid) <= cv.MAX_REQUEST_ID and rid.isprintable() else ""


def _time(seconds: int, nanos: int) -> float:
    if not (cv.MIN_EPOCH_S <= seconds <= cv.MAX_EPOCH_S and 0 <= nanos < 1_000_000_000):
        raise InvalidRequest("time", f"not a valid timestamp: seconds={seconds} nanos={nanos}")
    return seconds + nanos / 1e9


def _envelope(body: bytes) -> tuple[str, int | None, int, int] | None:
    """(request id, time seconds or None, nanos, where the rest starts), or None.

    None when the bytes do not start with the request id and time as protobuf writers put
    them (then the request is mapped whole).
    """
    pos, end = 0, len(body)
    rid = ""
    seconds: int | None = None
    nanos = 0
    if pos < end and body[pos] == _REQUEST_ID_TAG:
        size, pos = _varint(body, pos + 1)
        if size < 0 or pos + size > end:
            return None
        try:
            rid = body[pos : pos + size].decode()
        except UnicodeDecodeError:
            return None
        pos += size
    if pos < end and body[pos] == _TIME_TAG:
        size, pos = _varint(body, pos + 1)
        stop = pos + size
        if size < 0 or stop > end:
            return None
        seconds = 0
        while pos < stop:
            tag = body[pos]
            value, pos = _varint(body, pos + 1)
            if value < 0 or pos > stop:
                return None
            if tag == _SECONDS_TAG:
                seconds = value - (1 << 64) if value >= 1 << 63 else value
            elif tag == _NANOS_TAG:
                nanos = value - (1 << 64) if value >= 1 << 63 else value
            else:
                return None
    return rid, seconds, nanos, pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it; (-1, pos) when it is malformed."""
    value = shift = 0
    end = len(data)
    while pos < end and shift < 70:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return -1, pos
