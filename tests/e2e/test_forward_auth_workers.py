"""`pdp serve --workers 2 --http-listen`: the workers share the forward-auth port."""

from __future__ import annotations

import http.client
from pathlib import Path

import yaml
from pdp_process import PdpProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_workers_share_the_forward_auth_port(tmp_path: Path) -> None:
    """Two workers, one HTTP port: every connection is answered by one of them."""
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "application": {"default": "00000000-0000-4000-8000-0000000000aa"},
                "identity": {"headers": {"user_id": "x-auth-request-user"}},
            }
        ),
        encoding="utf-8",
    )
    port = free_port()
    args = ["--workers", "2", "--gateway-config", str(config), "--http-listen", f"127.0.0.1:{port}"]
    with PdpProcess(ROOT / "examples" / "ai-workspace", *args) as pdp:
        pdp.wait_ready()
        statuses = []
        for i in range(8):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            headers = {"X-Auth-Request-User": "ada@contoso.example"} if i % 2 else {}
            conn.request("GET", "/authz", headers=headers)
            statuses.append(conn.getresponse().status)
            conn.close()
        assert statuses == [401, 200] * 4
        assert pdp.stop() == 0
