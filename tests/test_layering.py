"""The package layering: which part of pdp may import which, so data flows one way.

Every module of `pdp` belongs to one unit (a subpackage such as `pdp.engine`, or a
top-level module such as `pdp.decide`). `ALLOWED` says which other units each unit may
import; a new import across units must be added here on purpose, and a loop (two units
allowed to import each other) is refused by the table's own test. The pure layers (policy,
engine) import no transport, store or metrics library. README's package table lists exactly
these units.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pdp"
FOUNDATION = {"pdp.errors", "pdp.vocabulary", "pdp.bounded"}
DOMAIN = FOUNDATION | {"pdp.context", "pdp.context_values"}
DECIDING = DOMAIN | {"pdp.policy", "pdp.engine", "pdp.risk", "pdp.policy_store", "pdp.decide"}
ALLOWED: dict[str, set[str]] = {
    "pdp.errors": set(),
    "pdp.vocabulary": set(),
    "pdp.bounded": set(),
    "pdp.v1": set(),  # generated
    "pdp.context": FOUNDATION,
    "pdp.context_values": FOUNDATION | {"pdp.context"},
    "pdp.limits": set(),
    "pdp.policy": FOUNDATION,
    "pdp.risk": DOMAIN | {"pdp.policy"},
    "pdp.engine": DOMAIN | {"pdp.policy", "pdp.risk"},
    "pdp.policy_store": FOUNDATION | {"pdp.policy"},
    "pdp.decide": DECIDING - {"pdp.decide"},
    "pdp.tokens": FOUNDATION,
    "pdp.observability": DOMAIN | {"pdp.engine", "pdp.risk", "pdp.policy"},
    "pdp.server": DECIDING | {"pdp.observability", "pdp.limits", "pdp.v1"},
    "pdp.gateway": DECIDING | {"pdp.observability", "pdp.limits", "pdp.tokens"},
    "pdp.console": set(),
    # A way in: the deciding units, observability, Envoy's mapping and the token checks.
    "pdp.forward_auth": DECIDING | {"pdp.observability", "pdp.gateway", "pdp.tokens", "pdp.limits"},
    "pdp.config": FOUNDATION | {"pdp.gateway", "pdp.risk", "pdp.console"},
    "pdp.runtime": DECIDING
    | {"pdp.observability", "pdp.server", "pdp.gateway", "pdp.config", "pdp.limits", "pdp.v1"}
    | {"pdp.forward_auth"},
    # The policy owners' tools: domain values, and the gRPC API's request mapping for test
    # suites' sign-ins (in one module, pdp.tooling.request_json).
    "pdp.tooling": DECIDING | {"pdp.server", "pdp.v1"},
    "pdp.cli": DECIDING
    | {
        "pdp.observability",
        "pdp.server",
        "pdp.gateway",
        "pdp.config",
        "pdp.runtime",
        "pdp.tooling",
        "pdp.console",
        "pdp.v1",
    },
    "pdp.__main__": {"pdp.cli"},
}
PURE = ("pdp.policy", "pdp.engine")
NOT_IN_PURE = ("grpc", "redis", "prometheus_client", "google.protobuf", "structlog")


def _unit(module: str) -> str:
    """The unit of a dotted module name (pdp.server.convert_in -> pdp.server)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pdp":  # from pdp import context_values (not __version__)
                names.update(f"pdp.{a.name}" for a in node.names if not a.name.startswith("__"))
            else:
                names.add(node.module)
    return names


MODULES = _modules()


def test_every_unit_has_a_rule_and_the_rules_have_no_loop() -> None:
    """Each unit of pdp is in the table, and no two units may import each other."""
    units = {_unit(m) for m in MODULES if m != "pdp"}
    assert units == set(ALLOWED)
    loops = sorted((a, b) for a, allowed in ALLOWED.items() for b in allowed if a in ALLOWED[b])
    assert not loops


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "pdp"))
def test_a_module_imports_only_the_units_its_unit_may(module: str) -> None:
    """Imports across units follow ALLOWED (data flows one way)."""
    unit = _unit(module)
    used = {_unit(n) for n in _imports(MODULES[module]) if n.split(".")[0] == "pdp"} - {unit}
    assert used <= ALLOWED[unit], f"{module} imports {sorted(used - ALLOWED[unit])}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _unit(m) in PURE))
def test_pure_layers_import_no_transport_store_or_metrics(module: str) -> None:
    """pdp.policy and pdp.engine import neither grpc, redis, protobuf, metrics nor logging."""
    bad = sorted(
        n
        for n in _imports(MODULES[module])
        if any(n == f or n.startswith(f + ".") for f in NOT_IN_PURE)
    )
    assert not bad, f"{module} imports {bad}"


def test_the_readme_package_table_lists_every_unit() -> None:
    """README's Development table names each unit of pdp once (pdp.v1 and __main__ aside)."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = text[text.index("The package tree follows a request") :]
    section = section[: section.index("\n\n", section.index("|"))]
    listed = {
        "pdp." + m.group(1).strip("/").replace("/", ".").removesuffix(".py")
        for m in re.finditer(r"^\| `pdp/([^`]+)` \|", section, re.MULTILINE)
    }
    assert listed == set(ALLOWED) - {"pdp.v1", "pdp.__main__"}
