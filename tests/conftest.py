import contextlib, io, os, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path
from unittest import mock
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


def tito_main(*args, input=None) -> subprocess.CompletedProcess:
    "`tito ARGS` in this process, as `run_tito` runs it in a subprocess: for tests of a command, not of the entry point."
    from tinytorch_progress.cli.main import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), mock.patch("sys.stdin", io.StringIO(input or "")):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def free_port() -> int:
    "A port on 127.0.0.1 that nothing listens on (now)."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


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


# ---------------------------------------------------------------- temporary folders
# The store fsyncs every file it writes and its folder: a few milliseconds apiece on a disk, and the quick loop writes
# thousands of files, so on a busy 2-core machine it waited 10-20 s of its 75 s for fsync. On a RAM file system an
# fsync costs nothing, and what the tests check (which writes happened, in what order, what a killed process leaves)
# is the same. So this process's temporary files go to /dev/shm when it has room: pytest's own folders too
# (pytest-of-USER/pytest-N, the last three runs kept as usual); `--basetemp DIR` still decides.
RAM_DIR, RAM_ROOM = Path("/dev/shm"), 4 * 2**30  # the fault suite writes files of 50 MB; a container's 64 MB is too small


def pytest_configure(config):
    if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK) and shutil.disk_usage(RAM_DIR).free >= RAM_ROOM:
        tempfile.tempdir = str(RAM_DIR)


# ---------------------------------------------------------------- markers (registered in pyproject.toml)
# `pytest -n 2 -m "not slow"` is the quick loop (with `nbdev_test`, under a minute); CI runs everything. A slow file says so at its top
# (`pytestmark = pytest.mark.slow`, browser files add `pytest.mark.browser`), a slow test in a quick file with
# `@pytest.mark.slow`. Only the PostgreSQL rule is here, because it goes by parameter, not by file or test: the
# server tests run once on SQLite (quick) and once on PostgreSQL (a fresh schema per test costs about as much as the
# SQLite half of the suite), through one `db_url` fixture; tests named *postgres* use PostgreSQL only.

def pytest_collection_modifyitems(config, items):
    for item in items:
        name = getattr(item, "originalname", item.name)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres" in name or "postgresql" in params.values():
            item.add_marker(pytest.mark.postgres); item.add_marker(pytest.mark.slow)


@contextlib.contextmanager
def background_process(cmd, log_path, ready, what: str, timeout: float = 60, **popen):
    "Run `cmd` with its output in `log_path` (a file: a full pipe would stall it) until `ready()` is true; yield the process, stop it after."
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


@contextlib.contextmanager
def tito_serve(cwd, *args, port=None, env=None, **popen):
    "The real `tito serve ARGS` in `cwd` on 127.0.0.1 (a free port unless given), once it answers; yields (URL, process)."
    import httpx
    url = f"http://127.0.0.1:{port or free_port()}"
    cmd = TITO + ["serve", *map(str, args), "--port", url.rsplit(":", 1)[1]]
    ready = lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    with background_process(cmd, Path(cwd) / "serve.log", ready, "tito serve", timeout=30, cwd=cwd,
                            env=env or {**os.environ, "NO_COLOR": "1"}, **popen) as proc:
        yield url, proc

