#!/usr/bin/env bash
# Install tinytorch-progress into .venv and build the demo course workspace (default: ./tito-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e ".[server]"
.venv/bin/tito demo "${1:-tito-demo}"
