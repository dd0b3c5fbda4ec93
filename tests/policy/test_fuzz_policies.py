"""Fuzzing the loader and compiler: hostile policy files end in diagnostics, never a crash.

A bounded run (PDP_FUZZ_EXAMPLES examples per flavour, 60 unless set); `python
scripts/fuzz_policies.py --examples N` runs the same properties for longer and prints how
many inputs it tried.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_fuzzing import (
    as_json,
    check_files,
    graph_documents,
    mutated_corpus_documents,
    raw_files,
    yaml_texts,
)

EXAMPLES = int(os.environ.get("PDP_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(documents=st.lists(graph_documents(), max_size=4))
def test_graph_shaped_documents_load_or_are_refused(documents: list[dict[str, Any]]) -> None:
    """Documents built from Graph's property names, holding anything, as JSON."""
    check_files({"policies.json": as_json(documents)})


@FUZZ
@given(documents=st.lists(mutated_corpus_documents(), min_size=1, max_size=3))
def test_mutated_real_exports_load_or_are_refused(documents: list[dict[str, Any]]) -> None:
    """Real exports with values replaced, removed or added, as JSON and as YAML."""
    check_files(
        {
            "policies.json": as_json(documents),
            "more.yaml": yaml.safe_dump_all(documents, allow_unicode=True).encode("utf-8"),
        }
    )


@FUZZ
@given(text=yaml_texts())
def test_yaml_with_anchors_aliases_and_tags_loads_or_is_refused(text: str) -> None:
    """YAML text with anchors, aliases, merges and tags spliced into a document."""
    check_files({"policy.yaml": text.encode("utf-8", "surrogatepass")})


@FUZZ
@given(raw=raw_files, suffix=st.sampled_from([".json", ".yaml", ".yml"]))
def test_raw_bytes_load_or_are_refused(raw: bytes, suffix: str) -> None:
    """Any bytes, behind any byte-order mark, under any policy file suffix."""
    check_files({f"policy{suffix}": raw})
