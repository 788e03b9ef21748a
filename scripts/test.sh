#!/usr/bin/env bash
# Install the project with its dev extra into .venv and run every check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e ".[dev]"
.venv/bin/pip check

# The notebooks are the source: exporting them must not change the package.
.venv/bin/nbdev_export
if [ -n "$(git status --porcelain -- tinytorch_progress 2>/dev/null)" ]; then
  echo "nbdev_export changed tinytorch_progress/ — edit nbs/ and export:"; git status --porcelain -- tinytorch_progress; exit 1
fi
.venv/bin/nbdev_test --n_workers 2
.venv/bin/python -m pytest -q -p no:cacheprovider tests
