import json, os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "data" / "json_formats_spec.md"
TITO = [sys.executable, "-m", "tinytorch_progress.cli"]


def spec_json_blocks() -> list:
    "Every ```json block of the spec, parsed."
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", SPEC.read_text(), re.S)]


def run_tito(*args, cwd=None, env=None, input=None, timeout=120):
    "Run the real `tito` entry point in a subprocess."
    e = {**os.environ, "NO_COLOR": "1", **(env or {})}
    e.pop("TITO_ROOT", None) if env is None or "TITO_ROOT" not in env else None
    return subprocess.run(TITO + [str(a) for a in args], cwd=cwd, env=e, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tito():
    return run_tito


def ipython_shell():
    "The one global test IPython shell (started on first use), with the extension loaded."
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython
    start_ipython()
    shell = get_ipython()
    shell.run_line_magic("load_ext", "tinytorch_progress")
    return shell
