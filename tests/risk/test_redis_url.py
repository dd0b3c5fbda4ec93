"""--redis-url: parsed, redacted whatever the password holds, and refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pdp.risk.redis_url import parse_redis_url, redact

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = ["pa/ssSecret", "pa?ss#Secret", "p@ss@Secret", "pa:ss/Se?cr#et@", "%2Fenc%3Fded"]


@pytest.mark.parametrize(
    ("url", "nodes", "shown"),
    [
        ("redis://h", [("h", 6379)], "redis://h:6379/0"),
        ("rediss://pdp:pw@h:6380/2", [("h", 6380)], "rediss://pdp:***@h:6380/2"),
        ("redis://:pw@a:1,[::1]:3", [("a", 1), ("::1", 3)], "redis://:***@a:1,[::1]:3/0"),
        ("redis://u%40x:p%3Aw@h/0", [("h", 6379)], "redis://u%40x:***@h:6379/0"),
        ("redis://:pa/ss@host:6390/0", [("host", 6390)], "redis://:***@host:6390/0"),
        ("redis://u:p?a#s@s@h:1/3", [("h", 1)], "redis://u:***@h:1/3"),
    ],
)  # fmt: skip
def test_redis_urls_parse_and_redact(url: str, nodes: list[tuple[str, int]], shown: str) -> None:
    """Hosts, ports, TLS and database come from the URL; its redacted form hides the password."""
    address = parse_redis_url(url)
    assert list(address.nodes) == nodes
    assert address.redacted == shown
    assert address.tls is url.startswith("rediss")


@pytest.mark.parametrize("password", PASSWORDS)
def test_any_password_is_taken_whole_and_never_shown(password: str) -> None:
    """`/ ? # @ :` in a password are part of it: parsed whole, and redacted everywhere."""
    url = f"redis://pdp:{password}@cache.internal:6390/1"
    address = parse_redis_url(url)
    assert (address.username, address.nodes, address.db) == ("pdp", (("cache.internal", 6390),), 1)
    assert address.password in {password, "/enc?ded"}
    for text in (redact(url), address.redacted):
        assert "Secret" not in text
        assert "enc" not in text
        assert "cache.internal:6390" in text
    assert "Secret" not in repr(address)
    assert "enc" not in repr(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://u:pa/ssSecret@h",
        "redis://u:pa?ssSecret@h:99999",
        "redis://u:pa#ssSecret@h/x",
        "redis://u:p@ssSecret@h/0?socket_timeout=1",
        "u:pa/ssSecret@h:6379",
        "redis://u:pa/ssSecret@/0",
    ],
)
def test_bad_redis_urls_are_one_line_errors_without_the_password(url: str) -> None:
    """A bad URL is a one-line ValueError naming --redis-url, never showing the password."""
    with pytest.raises(ValueError, match=r"^--redis-url ") as info:
        parse_redis_url(url)
    assert "Secret" not in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--redis-url", "http://u:pa/ssSecret@h:1"], "--redis-url 'http://u:***@h:1'"),
        (
            ["--redis-url", "redis://:pa?ssSecret@h:1/2", "--redis-mode", "cluster"],
            "Redis Cluster has only database 0",
        ),
        (
            ["--redis-url", "rediss://:Secret@h:1/0?ssl_ca_certs=/nonexistent/ca.pem"],
            "TLS:",
        ),
    ],
)
def test_pdp_serve_refuses_a_bad_redis_url_in_one_line(args: list[str], expected: str) -> None:
    """`pdp serve` with a bad --redis-url stops before serving: exit 2, no traceback, no secret."""
    command = [sys.executable, "-m", "pdp", "serve", "--policies", "examples/ai-workspace"]
    done = subprocess.run(
        [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Secret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("pdp serve: error: --redis-")


def test_pdp_evaluate_refuses_a_bad_redis_url_in_one_line() -> None:
    """`pdp evaluate --redis-url http://...`: a start-up error, one line, the password redacted."""
    command = [
        sys.executable, "-m", "pdp", "evaluate", "--policies", "examples/ai-workspace",
        "--request", "examples/requests/travel/1-paris.json",
        "--redis-url", "http://u:pa/ssSecret@h:1",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "pdp evaluate: risk settings: --redis-url 'http://u:***@h:1': the scheme must be"
        " redis:// or rediss://"
    ]
