"""The package layering: the engine and the policy compiler stay free of transport and I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pdp"
FORBIDDEN = ("grpc", "redis", "pdp.server", "pdp.v1", "prometheus_client")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "module",
    sorted(
        p.relative_to(PACKAGE.parent).as_posix()
        for sub in ("engine", "policy")
        for p in (PACKAGE / sub).rglob("*.py")
    ),
)
def test_pure_layers_import_no_transport(module: str) -> None:
    """pdp.engine and pdp.policy import neither grpc, redis, metrics nor the server."""
    imported = _imports(PACKAGE.parent / module)
    bad = sorted(n for n in imported if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))
    assert not bad, f"{module} imports {bad}"
