"""A real JupyterHub, all on loopback: the `jupyterhub` package with its DummyAuthenticator and SimpleLocalProcessSpawner,
`configurable-http-proxy` from npm, and `tito serve` as a hub-managed service configured by the README's own
`jupyterhub_config.py` lines (read from README.md; only ports, paths and the test's admin token are added).

Two students and an instructor sign in through the hub with a browser's cookie jar (the hub's login form, then the
site's OAuth with the hub); each student's single-user server runs `%tito sync` in a kernel of its own with no
`tito login`; each student sees only their own page, the member of the `instructors` group sees `/class` (with the
roster's sections); a forged token, another student's user id, or a forged `JUPYTERHUB_USER` gets nothing.
"""
import importlib.util, json, os, re, shutil, signal, socket, subprocess, sys, time, uuid
from pathlib import Path

import httpx
import pytest

from conftest import run_tito

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CHP = shutil.which("configurable-http-proxy")
if importlib.util.find_spec("jupyterhub") is None:
    pytest.skip('the jupyterhub package is not installed (pip install -e ".[dev]")', allow_module_level=True)
if CHP is None:
    pytest.skip("configurable-http-proxy is not installed (npm install -g configurable-http-proxy)", allow_module_level=True)
if not (BIN / "jupyterhub-singleuser").exists() or importlib.util.find_spec("jupyter_server") is None:
    pytest.skip("jupyterhub-singleuser (jupyter_server) is not installed", allow_module_level=True)

ADMIN = "test-admin-" + uuid.uuid4().hex  # the test's own service token: starts servers and reaches them


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_config() -> str:
    "The `jupyterhub_config.py` lines of the README's JupyterHub section: the configuration under test."
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return re.search(r"### On a JupyterHub.*?```python\n(.*?)```", readme, re.S).group(1)


TEST_SETTINGS = """
c = get_config()  # noqa
c.JupyterHub.ip, c.JupyterHub.port = "127.0.0.1", {proxy}
c.JupyterHub.hub_ip, c.JupyterHub.hub_port = "127.0.0.1", {hub}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{tmp}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{tmp}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{tmp}/home/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"]  # CI runs as root
c.Spawner.start_timeout = c.Spawner.http_timeout = 120
"""

TEST_OVERRIDES = """
# This machine's free port and paths for the service, and the test's own service token (starts servers, reaches them).
tito_service = next(s for s in c.JupyterHub.services if s["name"] == "tito")
tito_service.update(url="http://127.0.0.1:{tito}", command=[{tito_cmd!r}, "serve", "--db", "{tmp}/tito.db", "--log-level", "warning"])
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {admin!r}}})
c.JupyterHub.load_roles.append({{"name": "test-admin", "services": ["test-admin"], "scopes": ["admin:users", "admin:servers", "access:servers"]}})
"""


def wait_for(what, check, timeout=120, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
            if got: return got
        except httpx.TransportError: pass
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the hub exited\n{log.read_text()[-4000:] if log else ''}")
        if time.monotonic() > deadline: pytest.fail(f"{what}: not within {timeout} s\n{log.read_text()[-4000:] if log else ''}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hub")
    ports = dict(proxy=free_port(), hub=free_port(), proxy_api=free_port(), tito=free_port())
    # The roster comes first (no tokens: the hub signs people in), then each student's course folder with progress.
    (tmp / "roster.csv").write_text("username,section\nalice,L01\nbob,L02\n")
    r = run_tito("server", "import-roster", tmp / "roster.csv", "--no-tokens", "--db", tmp / "tito.db", cwd=tmp)
    assert r.returncode == 0, r.stderr
    for name, modules in {"alice": ["01", "02"], "bob": ["01"]}.items():
        ws = tmp / "home" / name
        assert run_tito("init", ws, cwd=tmp).returncode == 0
        for m in modules: assert run_tito("--root", ws, "module", "complete", m, "--skip-tests", cwd=tmp).returncode == 0
    values = dict(tmp=tmp, chp=CHP, singleuser=str(BIN / "jupyterhub-singleuser"), tito_cmd=str(BIN / "tito"), admin=ADMIN, **ports)
    config = TEST_SETTINGS.format(**values) + readme_config() + TEST_OVERRIDES.format(**values)
    (tmp / "jupyterhub_config.py").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "TITO_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    log = tmp / "hub.log"
    proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(tmp / "jupyterhub_config.py")], cwd=tmp, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{ports['proxy']}"
    api = httpx.Client(base_url=f"{base}/hub/api", headers={"Authorization": f"token {ADMIN}"}, timeout=30)
    try:
        wait_for("the hub", lambda: api.get("/").status_code == 200, proc=proc, log=log)
        wait_for("the tito service", lambda: httpx.get(f"{base}/services/tito/healthz", timeout=5).status_code == 200, proc=proc, log=log)
        yield {"base": base, "api": api, "tmp": tmp, "log": log, "proc": proc}
    finally:
        for name in ("alice", "bob"):  # the single-user servers first, then the hub (which stops its proxy and service)
            try: api.delete(f"/users/{name}/server")
            except httpx.HTTPError: pass
        api.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try: proc.wait(60)
            except subprocess.TimeoutExpired: pass
        try: os.killpg(proc.pid, signal.SIGKILL)  # anything of the hub's process group still there
        except ProcessLookupError: pass
        proc.wait()


def sign_in(hub, name: str) -> httpx.Client:
    "A browser: the hub's login form, then the site (which sends it through the hub's OAuth and back)."
    c = httpx.Client(base_url=hub["base"], follow_redirects=True, timeout=60, headers={"accept": "text/html"})
    form = c.get("/hub/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    r = c.post("/hub/login?next=%2Fservices%2Ftito%2F", data={"username": name, "password": "pw", **({"_xsrf": xsrf.group(1)} if xsrf else {})})
    assert r.status_code == 200 and str(r.url).endswith("/services/tito/"), (r.status_code, r.url, r.text[:500])
    assert f"Sign out {name}" in r.text
    return c


def start_server(hub, name: str):
    api = hub["api"]
    r = api.post(f"/users/{name}/server")
    assert r.status_code in (201, 202, 400), r.text  # 400: already running
    wait_for(f"{name}'s server", lambda: (api.get(f"/users/{name}").json().get("servers") or {}).get("", {}).get("ready"),
             proc=hub["proc"], log=hub["log"])


def run_in_kernel(hub, name: str, code: str, timeout: float = 120) -> str:
    "Run `code` in a new kernel of `name`'s single-user server (through the hub's proxy); its output as text."
    from websockets.sync.client import connect
    h = {"Authorization": f"token {ADMIN}"}
    r = httpx.post(f"{hub['base']}/user/{name}/api/kernels", json={"name": "python3"}, headers=h, timeout=60)
    assert r.status_code == 201, r.text
    kid, msg_id = r.json()["id"], uuid.uuid4().hex
    header = {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request", "version": "5.3"}
    out, replied, idle = [], False, False
    try:
        with connect(f"{hub['base'].replace('http', 'ws', 1)}/user/{name}/api/kernels/{kid}/channels", additional_headers=h,
                     open_timeout=60, max_size=None) as ws:
            ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                                            "allow_stdin": False, "stop_on_error": True}}))
            deadline = time.monotonic() + timeout
            while not (replied and idle):
                m = json.loads(ws.recv(timeout=max(1.0, deadline - time.monotonic())))
                if m.get("parent_header", {}).get("msg_id") != msg_id: continue
                kind, content = m["header"]["msg_type"], m["content"]
                if kind == "stream": out.append(content["text"])
                elif kind in ("display_data", "execute_result"): out.append(content["data"].get("text/plain", "") + "\n")
                elif kind == "error": out.append("\n".join(content["traceback"]))
                elif kind == "status": idle = content["execution_state"] == "idle"
                elif kind == "execute_reply": replied = True
    finally: httpx.delete(f"{hub['base']}/user/{name}/api/kernels/{kid}", headers=h, timeout=30)
    return "".join(out)


SYNC = "import os\n{setup}\nprint('TOKEN=' + os.environ['JUPYTERHUB_API_TOKEN'])\n%load_ext tinytorch_progress\n%tito sync"


def test_students_sign_in_and_sync_through_the_hub_with_no_login(hub):
    base, tokens = hub["base"], {}
    browsers = {name: sign_in(hub, name) for name in ("alice", "bob", "prof")}
    try:
        for name, modules in (("alice", 2), ("bob", 1)):
            start_server(hub, name)
            setup = "os.environ['JUPYTERHUB_USER'] = 'alice'" if name == "bob" else ""  # a forged name changes nothing
            out = run_in_kernel(hub, name, SYNC.format(setup=setup))
            assert f"/services/tito as {name}: server has {modules}/20 modules" in out, out
            tokens[name] = re.search(r"TOKEN=(\S+)", out).group(1)
            cfg = hub["tmp"] / "home" / name / ".tito" / "config.json"
            assert not cfg.exists() or '"token"' not in cfg.read_text()  # no login was stored

        alice, bob, prof = browsers["alice"], browsers["bob"], browsers["prof"]
        assert "<strong>2/20</strong> modules" in alice.get("/services/tito/u/alice").text
        assert alice.get("/services/tito/u/bob").status_code == 403  # only their own page
        assert bob.get("/services/tito/u/alice").status_code == 403 and bob.get("/services/tito/u/bob").status_code == 200
        assert alice.get("/services/tito/class").status_code == 403
        page = prof.get("/services/tito/class")
        assert page.status_code == 200 and "Class view" in page.text and 'href="/services/tito/u/alice"' in page.text
        l01 = prof.get("/services/tito/class?section=L01").text
        assert 'href="/services/tito/u/alice"' in l01 and 'href="/services/tito/u/bob"' not in l01  # the roster's sections
        assert prof.get("/services/tito/api/class/version").json()["version"]

        as_alice = {"Authorization": f"Bearer {tokens['alice']}"}
        assert httpx.get(f"{base}/services/tito/api/progress/alice", headers=as_alice).json()["user_id"] == "alice"
        assert httpx.get(f"{base}/services/tito/api/progress/bob", headers=as_alice).status_code == 403
        body = httpx.get(f"{base}/services/tito/api/progress/alice", headers=as_alice).json() | {"user_id": "bob"}
        assert httpx.post(f"{base}/services/tito/api/progress/upload", json=body, headers=as_alice).status_code == 403
        forged = {"Authorization": "Bearer " + uuid.uuid4().hex}
        assert httpx.post(f"{base}/services/tito/api/progress/upload", json=body, headers=forged).status_code == 401
        assert httpx.get(f"{base}/services/tito/api/progress/alice", headers=forged).status_code == 401
        anon = httpx.get(f"{base}/services/tito/class", headers={"accept": "text/html"})
        assert anon.status_code == 303 and "/services/tito/login" in anon.headers["location"]  # sign in through the hub

        r = run_tito("server", "list-users", "--json", "--db", hub["tmp"] / "tito.db", cwd=hub["tmp"])
        roles = {u["username"]: (u["role"], u["active_tokens"], u["modules_completed"]) for u in json.loads(r.stdout)}
        assert roles == {"alice": ("student", 0, 2), "bob": ("student", 0, 1), "prof": ("instructor", 0, None)}
    finally:
        for b in browsers.values(): b.close()
