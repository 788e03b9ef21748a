import contextlib, json, os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "data" / "json_formats_spec.md"
TITO = [sys.executable, "-m", "tinytorch_progress.cli.main"]


def spec_json_blocks() -> list:
    "Every ```json block of the spec, parsed."
    from spec_workspace import spec_blocks
    return spec_blocks(SPEC)


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
        # as in an activated environment: the `tito` on the PATH is this package's (the suggested commands say `tito`)
        mp.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        yield


# ---------------------------------------------------------------- markers (registered in pyproject.toml)
# `pytest -m "not slow"` is the quick loop (under a minute); CI runs everything. A slow file says so itself
# (`pytestmark = pytest.mark.slow` at its top, as the server's do); the files listed here are marked by name until then.
BROWSER_FILES = {"test_browser_jupyterlab.py"}
SLOW_FILES = BROWSER_FILES | {"test_store_faults.py", "test_export_sync.py", "test_module_tests.py", "test_milestones.py",
                              "test_demo.py", "test_containment.py", "test_first_hour.py", "test_fuzz_client.py",
                              "test_student_loop.py", "test_real_checkout.py", "test_report_speed_inputs.py",
                              "test_percent_reader.py"}
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


@contextlib.contextmanager
def background_process(cmd, log_path, ready, what: str, timeout: float = 60, **popen):
    "Run `cmd` with its output in `log_path` (a file: a full pipe would stall it) until `ready()` is true; yield the process, stop it after."
    import time
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **popen)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None: pytest.fail(f"{what} exited: {Path(log_path).read_text()[-2000:]}")
            try:
                if ready(): break
            except Exception: pass  # not answering yet (a refused connection, in whatever error the client raises)
            if time.monotonic() > deadline: pytest.fail(f"{what} did not start within {timeout:.0f} s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        log.close()


@contextlib.contextmanager
def jupyterlab_server(ws, base, env):
    "JupyterLab serving `ws` on 127.0.0.1, no browser, no news, no update checks; yields (url, token)."
    import secrets, socket, urllib.request
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0)); port = so.getsockname()[1]
    token = secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    def ready():
        with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r: return r.status == 200
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={ws}", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", *(["--allow-root"] if os.geteuid() == 0 else [])]
    with background_process(cmd, Path(base) / "jupyterlab.log", ready, "JupyterLab", timeout=90, cwd=ws, env=env):
        yield url, token


@contextlib.contextmanager
def uvicorn_thread(app):
    "Serve the ASGI `app` with uvicorn on a free 127.0.0.1 port in a thread; yields its URL."
    import socket, threading, time, uvicorn
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True); t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try: yield f"http://127.0.0.1:{port}"
    finally: server.should_exit = True; t.join(10)
