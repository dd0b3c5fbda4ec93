#!/usr/bin/env bash
# Refresh the lock files the container image is built from (README, "Container image"):
#
#   scripts/lock.sh            # after changing dependencies in pyproject.toml, or to update
#
# requirements.lock: every runtime dependency with the `fast` extra (uvloop), pinned with the
# sha256 of each of its files. requirements-build.lock: the build backend (hatchling) that
# turns pdp itself into a wheel. Both resolve for CPython 3.11 on Linux, the image's Python,
# from the package index alone (PIP_CONFIG_FILE=/dev/null: no local wheel folders or extra
# indexes of this machine end up in a lock). Needs pip-tools (in '.[dev]').
set -euo pipefail
cd "$(dirname "$0")/.."
python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
  { echo "scripts/lock.sh: run it with Python 3.11, the image's Python" >&2; exit 1; }
export PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="scripts/lock.sh"
common=(--quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url
  --no-emit-find-links --upgrade)
pip-compile "${common[@]}" --extra fast --output-file requirements.lock pyproject.toml
pip-compile "${common[@]}" --build-deps-for wheel --only-build-deps \
  --output-file requirements-build.lock pyproject.toml
