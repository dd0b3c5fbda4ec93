"""The committed protobuf stubs are exactly what `scripts/gen_proto.py` makes of `proto/`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("pdp_pb2.py", "pdp_pb2.pyi", "pdp_pb2_grpc.py", "pdp_pb2_grpc.pyi")


def test_committed_stubs_match_proto(tmp_path: Path) -> None:
    """Regenerating the stubs from proto/ changes nothing in pdp/v1."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path)],
        check=True,
        cwd=ROOT,
    )
    for name in GENERATED:
        fresh = (tmp_path / "pdp" / "v1" / name).read_text(encoding="utf-8")
        committed = (ROOT / "pdp" / "v1" / name).read_text(encoding="utf-8")
        assert committed == fresh, (
            f"pdp/v1/{name} differs from proto/: run `python scripts/gen_proto.py`"
        )
