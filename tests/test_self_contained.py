"""The repository stands alone: nothing in it points at files outside it.

A fresh clone has no sibling folders, so README, docs, code, tests and deploy files may
name only paths inside the repository (and public URLs). Relative Markdown links must
resolve to a file or folder of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Parts of the tree a person or a test reads; caches, virtualenvs and .git are not ours.
SKIPPED_DIRS = frozenset({".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache"})
SKIPPED_DIRS |= {".ruff_cache", ".hypothesis", "build", "dist"}
TEXT_SUFFIXES = frozenset(
    {".py", ".pyi", ".md", ".toml", ".yaml", ".yml", ".json", ".proto", ".sh"}
)
TEXT_NAMES = frozenset({"Dockerfile", ".dockerignore", "run", ".gitignore"})
# Written split so that this file does not match itself.
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", r"(?<![\w.-])" + "shared/(?:reference|corpus)",
                               r"/" + r"work/", r"~/" + "shared"]))  # fmt: skip
LINK = re.compile(r"\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")


def repository_text_files() -> list[Path]:
    """Every text file of the repository that people or tools read."""
    out = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES):
            out.append(path)
    return sorted(out)


def outside_references(text: str) -> list[str]:
    """The lines of `text` that refer to a path outside the repository."""
    return [line.strip() for line in text.splitlines() if OUTSIDE.search(line)]


def test_detector_finds_outside_paths() -> None:
    """The scanner flags sibling and absolute machine paths, and leaves repository paths alone."""
    sibling = "see ../" + "shared/" + "corpus/ca-policies"
    reference = "(`shared/" + "reference/conditional-access.md` has the sources)"
    machine = "cp /" + "work/shared/x ."
    assert outside_references("\n".join([sibling, reference, machine])) == [
        sibling,
        reference,
        machine,
    ]
    fine = "tests/corpus/ca-policies, docs/conditional-access.md, a shared/ folder, /workspace"
    assert outside_references(fine) == []


def test_files_are_found() -> None:
    """The scan covers README, docs, the package, tests, deploy files and CI."""
    names = {p.relative_to(ROOT).as_posix() for p in repository_text_files()}
    for wanted in ("README.md", "pdp/cli.py", "Dockerfile", ".ci/run", "pyproject.toml"):
        assert wanted in names
    assert any(n.startswith("docs/") for n in names)
    assert any(n.startswith("deploy/kubernetes/") for n in names)
    assert not any(n.startswith(".venv/") for n in names)


def test_no_reference_outside_the_repository() -> None:
    """No file names a path outside the repository (a sibling shared folder, a machine path)."""
    found = [
        f"{path.relative_to(ROOT)}: {line}"
        for path in repository_text_files()
        for line in outside_references(path.read_text("utf-8", errors="replace"))
    ]
    assert found == [], "bring what is needed into the repository (docs/) and cite public URLs"


def markdown_files() -> list[Path]:
    """README and every Markdown file under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    """Every relative Markdown link of README and docs/ names a file or folder that exists."""
    for target in LINK.findall(path.read_text("utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        assert (path.parent / target).exists(), f"{path.name}: broken link {target}"
