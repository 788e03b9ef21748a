#!/usr/bin/env bash
# Install tinytorch-progress with what the demo's next steps use (the server and notebook extras) into .venv, then build
# the demo course workspace (default: ./tito-demo). A second run needs no network when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || python3 -m venv .venv

# Installed already? This folder's package, and every requirement of settings.ini (base, server, notebook) satisfied.
installed() {
  .venv/bin/python - <<'PY' 2>/dev/null
import configparser, importlib.metadata as md, pathlib, shlex, sys
from pip._vendor.packaging.requirements import Requirement
import tinytorch_progress
assert pathlib.Path(tinytorch_progress.__file__).resolve().parent.parent == pathlib.Path.cwd().resolve()
cfg = configparser.ConfigParser(delimiters=["="]); cfg.read("settings.ini", encoding="utf-8"); d = cfg["DEFAULT"]
for r in map(Requirement, shlex.split(" ".join(d[k] for k in ("requirements", "server_requirements", "notebook_requirements")))):
    if (r.marker is None or r.marker.evaluate()) and not r.specifier.contains(md.version(r.name), prereleases=True): sys.exit(1)
PY
}
installed && [ -x .venv/bin/tito ] || .venv/bin/pip install -q -e ".[server,notebook]"
.venv/bin/tito demo "${1:-tito-demo}"
