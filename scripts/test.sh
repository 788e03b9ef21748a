#!/usr/bin/env bash
# Install everything the tests need (system packages when run as root, the project with its dev extra into .venv),
# start PostgreSQL, then run every check and test; then the other supported Pythons (scripts/test-pythons.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

# System packages: a browser for the real-browser tests, PostgreSQL for the server suite, npm for the hub's proxy.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if ! command -v chromium >/dev/null || ! command -v pg_ctlcluster >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null
  fi
  # npm beside a Node.js from elsewhere may not install: the hub test then says it is skipped, the rest runs.
  command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null || echo "npm could not be installed"
fi
# The real-JupyterHub test's proxy (configurable-http-proxy, from npm); without npm that test says why it is skipped.
if command -v npm >/dev/null && ! command -v configurable-http-proxy >/dev/null; then
  npm install -g --silent configurable-http-proxy >/dev/null || echo "configurable-http-proxy could not be installed; the JupyterHub test will be skipped"
fi
if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then
  bash .ci/postgres.sh || echo "PostgreSQL could not be started; its tests will be skipped"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
export PATH="$PWD/.venv/bin:$PATH"  # as in an activated venv: `tito` on the PATH is this package's
.venv/bin/pip install -q -e ".[dev]"
.venv/bin/pip check

# The notebooks are the source: exporting them must not change the package.
.venv/bin/nbdev_export
if [ -n "$(git status --porcelain -- tinytorch_progress 2>/dev/null)" ]; then
  echo "nbdev_export changed tinytorch_progress/ — edit nbs/ and export:"; git status --porcelain -- tinytorch_progress; exit 1
fi
.venv/bin/nbdev_test --n_workers 2
.venv/bin/python -m pytest -q -rs -p no:cacheprovider tests  # -rs: every skipped test says why

# Every other supported Python (3.10 to 3.13, see setup.py): install, notebook tests and the fast tests, each in its
# own .venv-3.X.
bash scripts/test-pythons.sh
