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


# What a developer or student may have exported (a sync opt-out, no colours, a default workspace, plain http allowed,
# a debug switch, a server database) must not change what the tests see: they start without it and set what they need.
DEVELOPER_ENV = ("TITO_NO_SYNC", "NO_COLOR", "TITO_ROOT", "TITO_ALLOW_HTTP", "TITO_DEBUG", "TITO_SYNC_RETRIES",
                 "TITO_SYNC_BACKOFF", "TITO_SYNC_TIMEOUT", "TITO_SERVER_DB", "TITO_SERVER_DURABLE")


@pytest.fixture(autouse=True, scope="session")
def _without_developer_env():
    "Session-wide, so that module and session fixtures (servers, kernels) start without it too."
    with pytest.MonkeyPatch.context() as mp:
        for name in DEVELOPER_ENV: mp.delenv(name, raising=False)
        yield


# ---------------------------------------------------------------- markers (registered in pyproject.toml)
# `pytest -m "not slow"` is the quick loop (under a minute); CI runs everything. Marked here, by file and test name,
# so the test files stay free of bookkeeping.
BROWSER_FILES = {"test_browser_jupyterlab.py", "test_dashboard_browser.py"}
SLOW_FILES = BROWSER_FILES | {"test_server_soak.py", "test_server_e2e.py", "test_server_fuzz.py", "test_store_faults.py",
                              "test_export_sync.py", "test_module_tests.py", "test_milestones.py", "test_demo.py",
                              "test_containment.py", "test_first_hour.py", "test_fuzz_client.py", "test_student_loop.py"}
SLOW_TESTS = {  # file -> tests (names without parameters) that take seconds in files that are otherwise quick
    "test_readme.py": {"test_terminal_block", "test_milestones_block", "test_report_block", "test_plot_example",
                       "test_website_and_sync_blocks", "test_notebook_block"},
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        file, name = item.path.name, getattr(item, "originalname", item.name)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if file in BROWSER_FILES: item.add_marker(pytest.mark.browser)
        pg = "postgres" in name or "postgresql" in params.values()  # the PostgreSQL half of the server suite
        if pg: item.add_marker(pytest.mark.postgres)
        # a fresh PostgreSQL schema per test costs about as much as the SQLite half of the suite: in the full run only
        if pg or file in SLOW_FILES or name in SLOW_TESTS.get(file, ()): item.add_marker(pytest.mark.slow)
