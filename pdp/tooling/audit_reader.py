"""Read audit logs as a stream of records: one JSON line at a time, in constant memory.

pdp's audit lines are shaped like Entra `signIn` entries (README, "Audit log"); exports of
Entra sign-in logs as JSON lines read the same. Each line is decoded straight into a typed
`AuditRecord` holding only the fields reports use (msgspec skips the rest without building
them: a line decodes in about 1.5 µs, where the standard library's json takes about 14).
Nested parts that repeat (the applied policies of one outcome) are decoded once per
distinct text.
Unknown fields are ignored, failed-call records (no decision, no policies) are ordinary
records, and a line that is not a JSON object, or whose fields have impossible types, is
counted as unreadable with its file and line number, never fatal. Files ending in `.gz`
are decompressed on the fly; `-` is standard input.
"""

from __future__ import annotations

import contextlib
import gzip
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

NULL = msgspec.Raw(b"null")


class Place(msgspec.Struct, frozen=True, gc=False):
    """Where a sign-in of a risk detection happened."""

    countryOrRegion: str | None = None  # noqa: N815 - Graph's field names


class Detection(msgspec.Struct, frozen=True, gc=False):
    """One risk detection (riskDetections[])."""

    riskEventType: str | None = None  # noqa: N815
    riskLevel: str | None = None  # noqa: N815
    previous: Place | None = None
    current: Place | None = None


class AppliedPolicy(msgspec.Struct, frozen=True, gc=False):
    """One entry of appliedConditionalAccessPolicies."""

    id: str | None = None
    displayName: str | None = None  # noqa: N815
    result: str | None = None


class Status(msgspec.Struct, frozen=True, gc=False):
    """The call's status: errorCode 0, or a failure."""

    errorCode: int | None = 0  # noqa: N815
    failureReason: str | None = None  # noqa: N815


class AuditRecord(msgspec.Struct, gc=False):
    """The fields of one audit line that reports read.

    The nested parts stay raw JSON text (`msgspec.Raw`: checked, not built) because most
    records repeat a few of them verbatim; `AuditParts` decodes each distinct text once.
    """

    createdDateTime: str | None = None  # noqa: N815 - Graph's field names
    userId: str | None = None  # noqa: N815
    servicePrincipalId: str | None = None  # noqa: N815
    appId: str | None = None  # noqa: N815
    status: msgspec.Raw = NULL
    conditionalAccessStatus: str | None = None  # noqa: N815
    decision: str | None = None
    riskDetections: msgspec.Raw = NULL  # noqa: N815
    riskDegraded: bool | None = None  # noqa: N815
    appliedConditionalAccessPolicies: msgspec.Raw = NULL  # noqa: N815


class AuditParts:
    """Decodes the raw nested parts of records, each distinct text once (bounded memo)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._policies: dict[bytes, tuple[AppliedPolicy, ...]] = {}
        self._policies_decoder = msgspec.json.Decoder(tuple[AppliedPolicy, ...] | None)
        self._status_decoder = msgspec.json.Decoder(Status | None)
        self._detections_decoder = msgspec.json.Decoder(list[Detection] | None)
        self.unreadable = 0  # records with a nested part of an impossible type

    def policies(self, raw: bytes) -> tuple[AppliedPolicy, ...]:
        """The appliedConditionalAccessPolicies of a record."""
        found = self._policies.get(raw)
        if found is None:
            try:
                found = self._policies_decoder.decode(raw) or ()
            except msgspec.DecodeError:
                self.unreadable += 1
                found = ()
            if len(self._policies) >= self.LIMIT:
                self._policies.clear()
            self._policies[raw] = found
        return found

    def status(self, raw: bytes) -> Status | None:
        """The record's status (None when absent)."""
        try:
            return self._status_decoder.decode(raw)
        except msgspec.DecodeError:
            self.unreadable += 1
            return None

    def detections(self, raw: bytes) -> list[Detection]:
        """The record's risk detections."""
        try:
            return self._detections_decoder.decode(raw) or []
        except msgspec.DecodeError:
            self.unreadable += 1
            return []


@dataclass(slots=True)
class ReadStats:
    """What the reader saw besides records."""

    lines: int = 0
    unreadable: int = 0
    examples: list[str] = field(default_factory=list)  # "file:line: why", the first few


_DECODER = msgspec.json.Decoder(AuditRecord)
_MAX_EXAMPLES = 5


def read_records(sources: Iterable[str], stats: ReadStats) -> Iterator[AuditRecord]:
    """Every record of every source in order; unreadable lines are counted in `stats`."""
    decode = _DECODER.decode
    for source in sources:
        with _open(source) as stream:
            number = 0
            for line in stream:
                number += 1
                try:
                    yield decode(line)
                except msgspec.DecodeError as exc:
                    if not line.strip():
                        continue
                    stats.unreadable += 1
                    if len(stats.examples) < _MAX_EXAMPLES:
                        stats.examples.append(f"{source}:{number}: {exc}")
            stats.lines += number


def _open(source: str) -> AbstractContextManager[Iterable[bytes]]:
    if source == "-":
        return contextlib.nullcontext(sys.stdin.buffer)  # read, never closed
    if source.endswith(".gz"):
        return gzip.open(source, "rb")
    return Path(source).open("rb", buffering=1 << 20)
