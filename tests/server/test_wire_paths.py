"""The gRPC way in and out on bytes: the content memo and the response writer change nothing.

`ContextMemo.context(body)` must give exactly the SignInContext that parsing the body and
`to_context` give, on a first sight and on every repeat (with other ids and times), for
refused requests too, and whatever order the fields come in. `ResponseWriter.write` must
give exactly the bytes `to_response(...).SerializeToString()` gives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.context import SignInContext
from pdp.decide import Decider
from pdp.errors import InvalidRequest
from pdp.policy_store import PolicyStore
from pdp.risk.assessor import build_assessor
from pdp.risk.settings import RiskSettings
from pdp.server.context_memo import ContextMemo, map_request, parse
from pdp.server.convert_in import to_context
from pdp.server.convert_out import ResponseWriter, timestamp, to_response
from pdp.v1 import pdp_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "requests").rglob("*.json"))
NOW = 1_795_251_600.0


def requests() -> list[pb.EvaluateRequest]:
    """The example requests and the load test's, as messages."""
    ghz = json.loads((ROOT / "deploy" / "ghz" / "requests.json").read_text("utf-8"))
    out = [json_format.Parse(p.read_text("utf-8"), pb.EvaluateRequest()) for p in EXAMPLES]
    out.extend(json_format.ParseDict({**d, "requestId": ""}, pb.EvaluateRequest()) for d in ghz)
    return out


def comparable(ctx: SignInContext) -> SignInContext:
    """`ctx` without its generated parts: a fresh request id when none was sent."""
    return dataclasses.replace(ctx, request_id="" if len(ctx.request_id) == 32 else ctx.request_id)


def mapped_or_refused(function: Any, *args: Any) -> SignInContext | str:
    """What `function(*args)` maps to, or the refusal's message."""
    try:
        return comparable(function(*args))
    except InvalidRequest as exc:
        return f"refused: {exc}"


@given(
    index=st.integers(0, len(requests()) - 1),
    ids=st.lists(st.text(max_size=8), min_size=1, max_size=3),
    seconds=st.lists(
        st.one_of(st.none(), st.integers(-(10**10), 2 * 10**11)), min_size=1, max_size=3
    ),
)
@settings(max_examples=120, deadline=None)
def test_the_memo_maps_first_sights_and_repeats_as_to_context_does(
    index: int, ids: list[str], seconds: list[int | None]
) -> None:
    """Every repeat of a content, with its own id and time, maps as a fresh parse does."""
    memo = ContextMemo()
    mapped = map_request(memo)
    base = requests()[index]
    for rid in ids:
        for second in seconds:
            request = pb.EvaluateRequest()
            request.CopyFrom(base)
            request.request_id = rid
            if second is None:
                request.ClearField("time")
            else:
                request.time.seconds = second
            body = request.SerializeToString()
            assert mapped_or_refused(mapped, body, NOW) == mapped_or_refused(
                lambda b, n: to_context(parse(b), n), body, NOW
            )
    assert memo.hits + memo.misses > 0


@pytest.mark.parametrize(
    "edit",
    [
        {"network": {"ipAddress": "10.0.0.300"}},  # a refusal, remembered
        {"device": {"platform": "PLATFORM_UNSPECIFIED", "attributes": {"deviceId": "x"}}},
        {"subject": {"userId": "u" * 2000}},
    ],
)
def test_refusals_are_the_same_on_a_repeat(edit: dict[str, Any]) -> None:
    """A refused content is refused again, with the same message, without a parse."""
    data = {"requestId": "r", "subject": {"userId": "u"}, "target": {"applicationId": "a"}}
    request = json_format.ParseDict({**data, **edit}, pb.EvaluateRequest())
    body = request.SerializeToString()
    memo = ContextMemo()
    with pytest.raises(InvalidRequest) as first:
        memo.context(body, NOW)
    with pytest.raises(InvalidRequest) as again:
        memo.context(body, NOW)
    with pytest.raises(InvalidRequest) as fresh:
        to_context(request, NOW)
    assert str(first.value) == str(again.value) == str(fresh.value)
    assert (memo.misses, memo.hits) == (1, 1)


def _user_body(n: int, rid: str = "r") -> bytes:
    data = {"requestId": rid, "subject": {"userId": f"u{n}"}, "target": {"applicationId": "a"}}
    return json_format.ParseDict(data, pb.EvaluateRequest()).SerializeToString()


@pytest.mark.parametrize(("max_entries", "max_bytes"), [(16, 1 << 20), (1000, 300), (1, 1 << 20)])
def test_the_memo_stays_within_its_bounds_and_forgets_the_oldest_first(
    max_entries: int, max_bytes: int
) -> None:
    """Past its entries or its bytes, the memo forgets its oldest contents, never the newest."""
    memo = ContextMemo(max_entries=max_entries, max_bytes=max_bytes)
    for n in range(200):
        assert memo.context(_user_body(n), NOW).user_id == f"u{n}"
        assert memo.misses == n + 1  # every content is new
        assert len(memo._entries) <= max_entries
        assert memo._bytes == sum(map(len, memo._entries)) <= max_bytes
    hits = memo.hits
    memo.context(_user_body(199, rid="again"), NOW)  # the newest: remembered
    assert memo.hits == hits + 1
    memo.context(_user_body(0, rid="again"), NOW)  # the oldest: forgotten long ago
    assert memo.hits == hits + 1
    assert memo.misses == 201


def test_fields_in_any_order_and_set_twice_map_as_protobuf_reads_them() -> None:
    """An id after the content, or an id and time set twice (the last wins), map correctly."""
    request = requests()[0]
    content = pb.EvaluateRequest()
    content.CopyFrom(request)
    content.ClearField("request_id")
    content.ClearField("time")
    head = pb.EvaluateRequest(request_id="first", time=timestamp(1.0)).SerializeToString()
    tail = pb.EvaluateRequest(request_id="last", time=timestamp(2.0)).SerializeToString()
    bodies = [
        content.SerializeToString() + pb.EvaluateRequest(request_id="after").SerializeToString(),
        head + content.SerializeToString() + tail,
        b"\xff\xff",  # not a message: refused
        head,  # an id and a time, nothing else: refused for want of a subject at decision
    ]
    mapped = map_request(ContextMemo())
    for body in bodies * 2:  # the second time through, whatever was remembered is used
        assert mapped_or_refused(mapped, body, NOW) == mapped_or_refused(
            lambda b, n: to_context(parse(b), n), body, NOW
        )


def test_the_writer_writes_the_bytes_to_response_serializes() -> None:
    """Decisions of the examples (travel risk reports included), ids and times of all sorts."""
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")
    writer = ResponseWriter()

    async def run() -> int:
        assessor = build_assessor(RiskSettings())
        decider = Decider(store, assessor)
        written = 0
        for rid in ("", "r", "x" * 127, "y" * 128):
            for seconds in (NOW, NOW + 0.999_999_999_9, 0.0, -5.25, 253_402_300_799.5):
                for request in requests():
                    request.request_id = rid
                    request.time.CopyFrom(timestamp(seconds))
                    for explain in (False, True):
                        request.explain = explain
                        try:
                            ctx = to_context(request, NOW)
                            decision = await decider.decide(ctx)
                        except InvalidRequest:
                            continue
                        wanted = to_response(decision, ctx).SerializeToString()
                        assert writer.write(decision, ctx) == wanted
                        written += 1
        await assessor.close()
        return written

    assert asyncio.run(run()) > 500
