"""README's commands and CI agree: CI runs README's test command and installs every tool.

README opens with two commands (run the server; run the tests). `.ci/run` must call the
test command exactly as README writes it, with CI=true exported first. Every tool a test
asks for through `require_tool` must be installed by CI (a Debian package in `.ci/run`'s
apt-get line, a PyPI package in the `dev` extra) and listed in README's tools table.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
CI_RUN = (ROOT / ".ci" / "run").read_text("utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# A package manager called with an install verb as a subprocess argument list.
INSTALLS = re.compile(r"""(?:apt_get|["'](?:apt-get|apt|dpkg|npm)["'])\s*,\s*["'](?:install|-i)""")
REQUIRE = re.compile(r'require_tool\(\s*"([^"]+)",\s*(?:"([^"]+)"|([A-Z_]+))')


def shell_blocks(text: str) -> list[str]:
    """The bodies of the ```sh blocks of `text`, in order."""
    return [body.strip() for lang, body in FENCE.findall(text) if lang == "sh"]


def required_tools() -> dict[str, str]:
    """Each tool a test requires (`require_tool`), mapped to the package that provides it."""
    out: dict[str, str] = {}
    for path in (ROOT / "tests").rglob("*.py"):
        text = path.read_text("utf-8")
        for binary, literal, constant in REQUIRE.findall(text):
            package = literal
            if constant:
                defined = re.search(rf'^{constant} = "([^"]+)"', text, re.M)
                assert defined is not None, f"{path.name}: {constant} is not a string constant"
                package = defined[1]
            out[binary] = package
    return out


def ci_apt_packages() -> set[str]:
    """The Debian packages `.ci/run` installs with apt-get."""
    joined = CI_RUN.replace("\\\n", " ")
    lines = [line for line in joined.splitlines() if "apt-get install" in line]
    assert lines, ".ci/run installs no Debian package"
    words = {w for line in lines for w in line.split("apt-get install", 1)[1].split()}
    return {w for w in words if re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", w)}


def dev_extra() -> set[str]:
    """The distribution names in pyproject's `dev` extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return {
        re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower()
        for req in project["optional-dependencies"]["dev"]
    }


def test_readme_opens_with_the_two_commands() -> None:
    """The first shell block serves the example set; the second sets up and runs the tests."""
    serve, tests = shell_blocks(README)[:2]
    assert "pdp serve --policies examples/ai-workspace" in serve
    assert tests.startswith("python3 -m venv .venv && ")
    assert tests.endswith("&& python -m pytest")
    assert "'.[dev]'" in tests


def test_ci_runs_the_readme_test_command_verbatim_under_ci_true() -> None:
    """`.ci/run` has README's test command as one line, after `export CI=true`."""
    command = shell_blocks(README)[1]
    lines = CI_RUN.splitlines()
    assert command in lines, ".ci/run must run README's test command exactly"
    assert "export CI=true" in lines
    assert lines.index("export CI=true") < lines.index(command)
    assert sum("pytest" in line and not line.startswith("#") for line in lines) == 1


def test_every_required_tool_is_installed_by_ci_and_listed_in_readme() -> None:
    """Each tool a test requires comes from .ci/run's apt-get or the dev extra, as README says."""
    tools = required_tools()
    assert {"kubectl", "promtool", "h2load", "hadolint", "grpcurl"} <= set(tools)
    apt, dev = ci_apt_packages(), dev_extra()
    development = README.split("\n## Development", 1)[1]
    for binary, package in tools.items():
        row = re.search(rf"^\| `{re.escape(binary)}`[^\n]*", development, re.M)
        assert row is not None, f"README's tools table has no row for {binary}"
        pypi = re.search(r"PyPI ([\w.-]+)", package)
        if pypi:
            assert pypi[1].lower() in dev, f"{binary}: {pypi[1]} is not in the dev extra"
            assert f"PyPI `{pypi[1]}`" in row[0], row[0]
        else:
            assert " " not in package, f"{binary}: say 'PyPI NAME' or a Debian package name"
            assert package in apt, f"{binary}: .ci/run does not apt-get install {package}"
            assert f"apt-get install {package}" in row[0], row[0]


def test_tests_install_nothing() -> None:
    """No test runs a package manager: .ci/run installs system packages, never a test."""
    for path in (ROOT / "tests").rglob("*.py"):
        if path.name == Path(__file__).name:
            continue
        text = path.read_text("utf-8")
        assert not INSTALLS.search(text), f"{path.relative_to(ROOT)} installs a package"


DISTRIBUTION = "pdp-conditional-access"
PIP_COMMAND = re.compile(r"\bpip3? (?:install|wheel|download)\b([^\n`|&;]*)")


def installed_names(text: str) -> list[str]:
    """The distribution names that the pip install/wheel commands in `text` ask for."""
    names = []
    for args in PIP_COMMAND.findall(text):
        for raw in args.split():
            word = raw.strip("'\"")
            if not word or word.startswith(("-", ".", "/", "$")) or "=" in word[:1]:
                continue
            names.append(re.split(r"[\[<>=!~;]", word, maxsplit=1)[0].lower())
    return names


def test_install_line_scanner() -> None:
    """The scanner finds the name in each form of an install line, and skips paths and flags."""
    text = "pip install 'pdp[fast]'\npip install -q -e '.[dev]'\npip wheel pdp==1 -r req.txt"
    assert installed_names(text) == ["pdp", "pdp", "req.txt"]


def test_distribution_has_its_own_name_and_the_pdp_command() -> None:
    """The distribution has a name of its own, and installs the `pdp` command and package."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert project["project"]["name"] == DISTRIBUTION
    assert project["project"]["scripts"] == {"pdp": "pdp.cli:main"}
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["pdp"]


def test_no_install_line_names_the_other_pdp() -> None:
    """No README, docs, Dockerfile, CI or test line installs `pdp` (an unrelated PyPI project)."""
    paths = [ROOT / "README.md", ROOT / "Dockerfile", ROOT / ".ci" / "run"]
    paths += sorted((ROOT / "docs").rglob("*.md"))
    paths += sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py"))
    for path in paths:
        if path.name == Path(__file__).name:
            continue
        names = installed_names(path.read_text("utf-8"))
        assert "pdp" not in names, f"{path.relative_to(ROOT)}: install {DISTRIBUTION} instead"
