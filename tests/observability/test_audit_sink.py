"""The audit writer against sinks that fail: disk full, files moved or deleted, /dev/full.

Whole lines or none, every loss counted, the file followed when it is replaced, and errors
logged at a bounded rate. Disk full is a real file-size limit (RLIMIT_FSIZE) in a child
process: a write crossing it is short, the next one fails, as on a full disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import structlog
from audit_helpers import dropped, put, strict_lines, wait_until

from pdp.observability.audit import AuditLog, _Sink

DISK_FULL = textwrap.dedent(
    """
    import json, resource, signal, sys, time
    from prometheus_client import REGISTRY
    from pdp.context import SignInContext
    from pdp.errors import ErrorCode
    from pdp.observability.audit import AuditLog, _Sink

    path, limit, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode != "cut":  # as when another process appended after the torn line
        _Sink.cut_back = lambda self, torn: False
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
    audit = AuditLog(path)

    def put_all(first, count):
        for n in range(first, first + count):
            ctx = SignInContext(request_id=f"{n:04d}", time=0.0, user_id="u" * (n % 97))
            audit.put(ctx, None, 0.0, 0.0, ErrorCode.CANCELLED)
        while audit._queue or audit._pending - (1 if audit._tail else 0):
            time.sleep(0.01)

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # the disk is full
    put_all(0, 300)
    torn = bool(audit._tail)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
    if mode != "close":  # "close": nothing more comes; close() completes the line
        put_all(300, 100)
    audit.close()
    value = REGISTRY.get_sample_value
    print(json.dumps({
        "write_failed": value("pdp_audit_records_dropped_total", {"reason": "write_failed"}),
        "torn": torn,
    }))
    """
)


@pytest.mark.parametrize(
    ("mode", "calls"), [("cut back", 400), ("complete", 400), ("close completes", 300)]
)
def test_disk_full_leaves_whole_lines_only_and_counts_every_lost_record(
    tmp_path: Path, mode: str, calls: int
) -> None:
    """The line a full disk tore is cut off the file, or completed once there is space.

    Either way no two records share a line, every line parses, and what is missing is
    exactly what was counted as lost. With nothing more to write, close() completes it.
    """
    path = tmp_path / "audit.jsonl"
    limit = 30_001  # mid-line: the write crossing it is short
    done = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(path), str(limit), mode.split(maxsplit=1)[0]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    records = strict_lines(path.read_text("utf-8"))
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    assert result["write_failed"] > 0
    assert len(ids) + result["write_failed"] == calls
    if calls == 400:
        assert ids[-100:] == [f"{n:04d}" for n in range(300, 400)]  # all written once it could
    assert result["torn"] is (mode != "cut back")
    assert "audit_write_failed" in done.stdout  # structlog's default output


def test_a_line_left_unfinished_by_an_earlier_process_is_ended_first(tmp_path: Path) -> None:
    """A file ending mid-line (a crash on a full disk) gets a line end before the next record."""
    path = tmp_path / "audit.jsonl"
    path.write_text('{"id":"0"}\n{"id":"torn', encoding="utf-8")
    audit = AuditLog(str(path))
    put(audit, 1)
    audit.close()
    lines = path.read_text("utf-8").splitlines()
    assert lines[:2] == ['{"id":"0"}', '{"id":"torn']
    assert json.loads(lines[2])["id"] == "1"


def test_a_deleted_file_is_created_again_without_sighup(tmp_path: Path) -> None:
    """Delete the audit file while pdp writes: the next records land in a new file."""
    path = tmp_path / "audit.jsonl"
    before = dropped()
    audit = AuditLog(str(path))
    for n in range(100):
        put(audit, n)
    wait_until(lambda: path.exists() and len(path.read_bytes().splitlines()) == 100)
    path.unlink()
    for n in range(100, 200):
        put(audit, n)
    audit.close()
    assert [r["id"] for r in strict_lines(path.read_text("utf-8"))] == [
        str(n) for n in range(100, 200)
    ]
    assert dropped() == before


def test_a_file_deleted_while_written_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted between the writer's look at the path and its write: written again, anew.

    That batch went to the deleted file, so it is written to a new one too. The race is
    made certain by skipping the look (`_Sink.moved`); every record is in the new file.
    """
    monkeypatch.setattr(_Sink, "moved", lambda self: None)
    path = tmp_path / "audit.jsonl"
    before = dropped()
    audit = AuditLog(str(path))
    for n in range(100):
        put(audit, n)
    wait_until(lambda: path.exists() and len(path.read_bytes().splitlines()) == 100)
    with path.open("rb") as old:
        path.unlink()
        for n in range(100, 200):
            put(audit, n)
        audit.close()
        in_old = [r["id"] for r in strict_lines(old.read().decode())]
    in_new = [r["id"] for r in strict_lines(path.read_text("utf-8"))]
    assert in_new[-100:] == [str(n) for n in range(100, 200)]
    # The unlink can land after the first batch's write and before the writer's look at the
    # file it wrote to: that batch is then written again, whole, at the head of the new file.
    again = in_new[:-100]
    assert again == in_old[len(in_old) - len(again) :]
    assert set(in_old) - {str(n) for n in range(100)} <= set(in_new)  # at most written twice
    assert dropped() == before


def test_a_replaced_file_is_followed_and_the_moved_one_keeps_its_lines(tmp_path: Path) -> None:
    """Logrotate's create mode without SIGHUP: moved, a new file made; both hold whole lines."""
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))
    for n in range(50):
        put(audit, n)
    wait_until(lambda: path.exists() and len(path.read_bytes().splitlines()) == 50)
    rotated = path.rename(tmp_path / "audit.jsonl.1")
    path.touch()
    for n in range(50, 80):
        put(audit, n)
    audit.close()
    assert len(strict_lines(rotated.read_text("utf-8"))) == 50
    assert [r["id"] for r in strict_lines(path.read_text("utf-8"))] == [
        str(n) for n in range(50, 80)
    ]


def test_a_failing_sink_is_reported_once_per_interval_with_every_loss_counted() -> None:
    """/dev/full: every write fails; one error record per interval, then one summing up."""
    before = dropped("write_failed")
    with structlog.testing.capture_logs() as events:
        audit = AuditLog("/dev/full", error_interval_s=60)
        for n in range(20):  # separate writes: the writer takes what has queued up
            put(audit, n)
            wait_until(lambda: not audit._queue and not audit._pending)
        audit.close()
    failures = [e for e in events if e["event"] == "audit_write_failed"]
    assert len(failures) == 2, failures  # the first, and the summary at close
    assert failures[0]["lost"] == 1
    assert failures[0]["suppressed"] == 0
    assert failures[1]["lost"] == 19
    assert failures[1]["suppressed"] == 19
    assert dropped("write_failed") - before == 20


def test_a_failed_reopen_keeps_writing_to_a_moved_file(tmp_path: Path) -> None:
    """The folder is gone (moved away): the moved file keeps the lines, nothing is lost."""
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "audit.jsonl"
    before = dropped()
    audit = AuditLog(str(path))
    put(audit, 0)
    wait_until(lambda: path.exists() and path.read_bytes().endswith(b"\n"))
    moved = folder.rename(tmp_path / "old-logs")
    for n in range(1, 10):
        put(audit, n)
        time.sleep(0.01)
    audit.close()
    assert len(strict_lines((moved / "audit.jsonl").read_text("utf-8"))) == 10
    assert dropped() == before
    assert not folder.exists()


def test_a_deleted_file_that_cannot_be_created_again_counts_its_lines_lost(
    tmp_path: Path,
) -> None:
    """File and folder deleted: lines written now would reach no one, so they are counted."""
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "audit.jsonl"
    before = dropped("write_failed")
    audit = AuditLog(str(path))
    put(audit, 0)
    wait_until(lambda: path.exists() and path.read_bytes().endswith(b"\n"))
    path.unlink()
    folder.rmdir()
    for n in range(1, 11):
        put(audit, n)
    audit.close()
    assert dropped("write_failed") - before == 10
    assert not folder.exists()  # nothing was created under the old name


def test_stdout_redirected_to_a_file_that_is_deleted_keeps_writing_to_it(tmp_path: Path) -> None:
    """`--audit-log -` onto a file: pdp cannot reopen stdout by name, so it never tries."""
    script = textwrap.dedent(
        """
        import os, sys
        from pdp.context import SignInContext
        from pdp.errors import ErrorCode
        from pdp.observability.audit import AuditLog
        from pdp.observability.logging import configure_logging

        configure_logging()  # records on stderr
        audit = AuditLog("-")
        os.unlink(sys.argv[1])
        for n in range(50):
            audit.put(SignInContext(request_id=str(n), time=0.0), None, 0.0, 0.0,
                      ErrorCode.CANCELLED)
        audit.close()
        """
    )
    out = tmp_path / "stdout.jsonl"
    with out.open("w") as stdout:
        done = subprocess.run(
            [sys.executable, "-c", script, str(out)],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "audit_writer_failed" not in done.stderr
    assert "audit_file_reopened" not in done.stderr
