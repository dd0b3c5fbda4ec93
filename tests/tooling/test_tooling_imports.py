"""pdp.tooling works on domain values: one module alone knows the request wire format."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TOOLING = Path(__file__).resolve().parents[2] / "pdp" / "tooling"
WIRE = ("pdp.server", "pdp.v1", "google.protobuf", "grpc", "pdp.decide", "pdp.gateway")
ALLOWED = {"request_json.py": {"pdp.server.convert_in", "pdp.v1", "google.protobuf"}}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(p.name for p in TOOLING.glob("*.py")))
def test_only_request_json_touches_the_wire_format(module: str) -> None:
    """Protobuf, gRPC and the transport are imported by request_json.py and nowhere else."""
    wire = {
        name
        for name in _imports(TOOLING / module)
        if any(name == w or name.startswith(w + ".") for w in WIRE)
    }
    assert wire <= ALLOWED.get(module, set()), f"{module} imports {sorted(wire)}"
