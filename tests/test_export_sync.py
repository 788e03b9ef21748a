"""Combined export against the spec's example, and `tito sync` against real HTTP servers on 127.0.0.1.

The servers are real: the package's own website (`server.create_app`, run by uvicorn in a thread, users made with the
real `tito server add-user`), wrapped in an ASGI layer that can inject 500s and lost replies; small `http.server`
servers for a lying server and for a token-leak check; a listening socket that never answers (timeouts); a port where
nothing listens (offline). No mock of httpx anywhere."""
import json, socket, stat, threading, time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import SPEC, run_tito
from tinytorch_progress import tracker
from spec_workspace import SPEC_DEVIATIONS, leaves, write_spec_workspace
from tinytorch_progress.export import build_export
from tinytorch_progress.schemas import CombinedExport
from tinytorch_progress.outbox import Outbox

FAST = {"TITO_SYNC_BACKOFF": "0.01", "TITO_SYNC_TIMEOUT": "5"}


# ---------------------------------------------------------------- helpers

def free_port() -> int:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port


def workspace(tmp_path, name="ws", completed=()) -> Path:
    root = tmp_path / name
    (root / ".tito").mkdir(parents=True)
    for n in completed: tracker.complete(root, n, skip_tests=True)
    return root


def tito(*args, env=None, input=None):
    return run_tito(*args, env={**FAST, **(env or {})}, input=input)


def login(root, server, token, user_id):
    "`tito login` in a test workspace; it must succeed (a wrong token is only found out by the server)."
    r = tito("--root", root, "login", "--server", server, "--token", token, "--user-id", user_id)
    assert r.returncode == 0, r.stderr


def sync_json(root, *extra, env=None):
    p = tito("--root", root, "sync", "--json", *extra, env=env)
    assert p.stdout.strip(), p.stderr
    return p.returncode, json.loads(p.stdout)


class Faults:
    "ASGI wrapper around the real app: counts requests, injects 500s or stores-then-loses the reply."
    def __init__(self, app):
        self.app, self.fail_uploads, self.lose_replies, self.requests = app, 0, 0, []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http": return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["method"], scope["path"], headers))
        if scope["path"] == "/api/progress/upload":
            if self.fail_uploads > 0:
                self.fail_uploads -= 1
                return await self.reply(send, 500, {"detail": "injected failure"})
            if self.lose_replies > 0:
                self.lose_replies -= 1
                sent = []
                async def swallow(msg): sent.append(msg)
                await self.app(scope, receive, swallow)  # the server stores the upload...
                return await self.reply(send, 502, {"detail": "reply lost"})  # ...the client never learns it
        return await self.app(scope, receive, send)

    @staticmethod
    async def reply(send, status, body):
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    def count(self, method, path):
        return sum(1 for m, p, _ in self.requests if m == method and p == path)


class Website:
    "The real progress website on 127.0.0.1:`port`, in a thread."
    def __init__(self, db_url, port=None):
        import uvicorn
        from tinytorch_progress.server import create_app
        self.db_url, self.port = db_url, port or free_port()
        self.app = create_app(db_url, rate_limit=None)
        self.faults = Faults(self.app)
        self.server = uvicorn.Server(uvicorn.Config(self.faults, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self): return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "website did not start"
            time.sleep(0.02)
        return self

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)
        self.app.state.db.engine.dispose()

    def add_user(self, name, user_id=None):
        "A token from the real `tito server add-user`."
        extra = ["--user-id", user_id] if user_id else []
        p = tito("server", "add-user", name, "--db", self.db_url, "--json", *extra)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)["token"]

    def snapshots(self, user_id=None) -> int:
        from tinytorch_progress.server import Snapshot, User
        s, u = Snapshot.__table__, User.__table__
        q = select(func.count()).select_from(s.join(u, u.c.id == s.c.user_pk))
        if user_id: q = q.where(u.c.user_id == user_id)
        with self.app.state.db.engine.connect() as c: return c.execute(q).scalar()


@pytest.fixture
def website(tmp_path):
    sites = []
    def make(port=None):
        w = Website(f"sqlite:///{tmp_path / 'class.db'}", port).start()
        sites.append(w)
        return w
    yield make
    for w in sites: w.stop()


class Recorder(BaseHTTPRequestHandler):
    "A small real server implementing the two endpoints; what it holds can be made to lie."
    def log_message(self, *a): pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.seen.append(("POST", self.path, self.headers.get("authorization"), body))
        if self.server.upload_reply is not None:  # a captive portal, a proxy, a server of another API: for any POST
            status, ctype, data = self.server.upload_reply
            return self.send_raw(status, ctype, data)
        if self.path != "/api/progress/upload": return self.send(404, {"detail": "not found"})
        sent = json.loads(body)
        self.server.received.append(sent)
        self.send(201, {"status": "stored", "user_id": sent.get("user_id") or "ada", "snapshot_id": len(self.server.received),
                        "latest": True, "modules_completed": sent["module_progress"]["completed_count"],
                        "milestones_completed": sent["milestone_progress"]["completed_count"]})

    def do_GET(self):
        self.server.seen.append(("GET", self.path, self.headers.get("authorization"), b""))
        if self.server.held_reply is not None:
            return self.send_raw(*self.server.held_reply)
        if self.path != "/api/progress/ada" or not self.server.received: return self.send(404, {"detail": "no progress"})
        held = dict(self.server.received[-1], user_id="ada")
        if self.server.lie:  # upstream's failure: accepted, but the dashboard stays at 0
            held["module_progress"] = {**held["module_progress"], "completed_count": 0, "completed_modules": [],
                                       "completion_dates": {}, "completion_percentage": 0}
        self.send(200, held)

    def send(self, status, body):
        self.send_raw(status, "application/json", json.dumps(body).encode())

    def send_raw(self, status, ctype, data: bytes):
        self.send_response(status)
        if ctype: self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers(); self.wfile.write(data)


@pytest.fixture
def recorder():
    srvs = []
    def make(lie=False):
        s = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        s.seen, s.received, s.lie, s.upload_reply, s.held_reply = [], [], lie, None, None
        threading.Thread(target=s.serve_forever, daemon=True).start()
        srvs.append(s)
        return s, f"http://127.0.0.1:{s.server_address[1]}"
    yield make
    for s in srvs: s.shutdown(); s.server_close()


# ---------------------------------------------------------------- export

def test_spec_workspace_exports_the_spec_example(tmp_path):
    example = write_spec_workspace(tmp_path, SPEC)
    got = build_export(tmp_path, example["user_id"], datetime.fromisoformat(example["timestamp"])).to_json()
    want, have = dict(leaves(example)), dict(leaves(got))
    assert set(have) == set(want), "keys and nesting differ from the spec's combined example"
    diff = {p: (want[p], have[p]) for p in want if want[p] != have[p]}
    assert diff == SPEC_DEVIATIONS  # every other field is equal to the spec's value
    assert CombinedExport.model_validate(got).consistency_errors() == []


def test_cli_export_stdout_and_file(tmp_path):
    example = write_spec_workspace(tmp_path, SPEC)
    p = tito("--root", tmp_path, "export", "--user-id", "student_identifier")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    CombinedExport.model_validate(out)
    assert set(dict(leaves(out))) == set(dict(leaves(example)))
    assert out["module_progress"] == example["module_progress"]
    dest = tmp_path / "export.json"
    p = tito("--root", tmp_path, "export", "--user-id", "student_identifier", "-o", dest)
    assert p.returncode == 0 and "Wrote the export of student_identifier (7/20 modules, 2/6 milestones completed)" in p.stdout
    written = json.loads(dest.read_text())
    assert {k: v for k, v in written.items() if k not in ("timestamp", "statistics")} == \
           {k: v for k, v in out.items() if k not in ("timestamp", "statistics")}
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]  # atomic: no temp file left
    p = tito("--root", tmp_path, "export")
    assert p.returncode == 1 and p.stderr.startswith("tito: error: no user id") and "Traceback" not in p.stderr


def test_token_file_is_0600_and_token_never_in_output(tmp_path, recorder):
    root = workspace(tmp_path, completed=[1])
    token = "tt_very_secret_token_123"
    p = tito("--root", root, "login", "--server", "http://127.0.0.1:9", "--token", token, "--user-id", "ada")
    assert p.returncode == 0 and token not in p.stdout + p.stderr
    cfg = root / ".tito" / "config.json"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600 and json.loads(cfg.read_text())["token"] == token
    p = tito("--root", root, "login", "--server", "http://127.0.0.1:9", "--token", "-", env=None, input=token + "\n")
    assert p.returncode == 0 and json.loads(cfg.read_text())["token"] == token and token not in p.stdout
    outputs = [tito("--root", root, "export").stdout, tito("--root", root, "export", "-o", tmp_path / "e.json").stdout,
               (tmp_path / "e.json").read_text(), tito("--root", root, "status", "--json").stdout]
    code, res = sync_json(root, env={"TITO_SYNC_RETRIES": "0"})  # offline: queued
    assert code == 1 and res["queued"] == 1
    outputs += [json.dumps(res)] + [p.read_text() for p in Outbox(root).items()]
    assert all(token not in o for o in outputs)
    assert stat.S_IMODE(Outbox(root).items()[0].stat().st_mode) == 0o600
    # a --server other than the logged-in one never receives the token
    srv, url = recorder()
    sync_json(root, "--server", url)
    assert srv.seen and all(auth is None for _, _, auth, _ in srv.seen)


# ---------------------------------------------------------------- sync against the real website

def test_sync_roundtrip_is_honest_and_idempotent(tmp_path, website):
    w = website()
    root = workspace(tmp_path, completed=[1, 2, 3])
    tracker.complete_milestone(root, "01")
    token = w.add_user("ada")
    assert tito("--root", root, "login", "--server", w.url + "/", "--token", token).returncode == 0
    code, res = sync_json(root)
    assert code == 0, res
    assert res["ok"] and res["user_id"] == "ada" and res["sent"] == 1 and res["queued"] == 0
    assert res["message"] == f"synced to {w.url} as ada: server has 3/20 modules, 1/6 milestones completed"
    assert json.loads((root / ".tito" / "config.json").read_text())["user_id"] == "ada"  # learned from the server
    assert [h.get("authorization") for m, _, h in w.faults.requests if m == "POST"] == [f"Bearer {token}"]
    import httpx
    held = httpx.get(f"{w.url}/api/progress/ada", headers={"Authorization": f"Bearer {token}"}).json()
    assert held["module_progress"]["completed_modules"] == [1, 2, 3]
    # nothing changed: a second sync re-sends the same bytes and the server stores nothing new
    code, res = sync_json(root)
    assert code == 0 and res["message"].endswith("(already up to date)"), res
    assert w.snapshots("ada") == 1
    tracker.complete(root, 4, skip_tests=True)
    p = tito("--root", root, "sync")
    assert p.returncode == 0 and "server has 4/20 modules" in p.stdout
    assert w.snapshots("ada") == 2


def test_retries_5xx_then_succeeds(tmp_path, website):
    w = website()
    root = workspace(tmp_path, completed=[1])
    login(root, w.url, w.add_user("bob"), "bob")
    w.faults.fail_uploads = 2
    code, res = sync_json(root)
    assert code == 0 and res["ok"], res
    assert w.faults.count("POST", "/api/progress/upload") == 3
    assert w.snapshots("bob") == 1


def test_5xx_exhausted_keeps_outbox(tmp_path, website):
    w = website()
    root = workspace(tmp_path, completed=[1])
    login(root, w.url, w.add_user("cy"), "cy")
    w.faults.fail_uploads = 100
    code, res = sync_json(root, env={"TITO_SYNC_RETRIES": "2"})
    assert code == 1 and not res["ok"] and res["queued"] == 1
    assert w.faults.count("POST", "/api/progress/upload") == 3  # 1 + 2 retries
    assert "HTTP 500: injected failure (after 3 attempts)" in res["message"]
    w.faults.fail_uploads = 0
    code, res = sync_json(root)
    assert code == 0 and res["sent"] == 1 and res["queued"] == 0 and w.snapshots("cy") == 1


def test_no_retry_on_4xx(tmp_path, website):
    w = website()
    w.add_user("dee")
    root = workspace(tmp_path, completed=[1])
    login(root, w.url, "tt_wrong", "dee")
    code, res = sync_json(root)
    assert code == 1 and res["queued"] == 1
    assert "HTTP 401: invalid or revoked token; check the token" in res["message"]
    assert w.faults.count("POST", "/api/progress/upload") == 1
    assert w.snapshots() == 0


def test_body_refused_is_moved_aside(tmp_path, website):
    w = website()
    root = workspace(tmp_path, completed=[1])
    login(root, w.url, w.add_user("eve"), "mallory")
    code, res = sync_json(root)
    assert code == 1 and res["queued"] == 0 and len(res["rejected"]) == 1 and "HTTP 403" in res["rejected"][0]
    assert w.faults.count("POST", "/api/progress/upload") == 1
    assert len(list((root / ".tito" / "outbox" / "rejected").glob("*.json"))) == 1


def test_offline_outbox_then_delivered_in_order_without_duplicates(tmp_path, website):
    port = free_port()  # nothing listens here yet
    root = workspace(tmp_path, completed=[1])
    url = f"http://127.0.0.1:{port}"
    code, res = sync_json(root, "--server", url, env={"TITO_SYNC_RETRIES": "1"})
    assert code == 1 and res["queued"] == 1 and res["message"].startswith(f"server {url} unreachable: cannot connect")
    assert f"; if it moved, `tito login --server NEW_URL` keeps your token. 1 snapshot(s) kept" in res["message"]
    code, res = sync_json(root, "--server", url, env={"TITO_SYNC_RETRIES": "0"})
    assert res["queued"] == 1  # same progress: not queued twice
    tracker.complete(root, 2, skip_tests=True)
    code, res = sync_json(root, "--server", url, env={"TITO_SYNC_RETRIES": "0"})
    assert res["queued"] == 2
    queued = [json.loads(p.read_text())["module_progress"]["completed_count"] for p in Outbox(root).items()]
    assert queued == [1, 2]
    w = website(port)  # the server comes up
    login(root, url, w.add_user("fay"), "fay")
    code, res = sync_json(root)
    assert code == 0 and res["sent"] == 2 and res["queued"] == 0, res
    assert "server has 2/20 modules" in res["message"]
    assert w.snapshots("fay") == 2
    uploads = [h for m, p, h in w.faults.requests if m == "POST"]
    assert len(uploads) == 2


def test_lost_reply_is_resent_and_stored_once(tmp_path, website):
    w = website()
    root = workspace(tmp_path, completed=[1, 2])
    login(root, w.url, w.add_user("gus"), "gus")
    w.faults.lose_replies = 1  # stored, but the client sees a 502 and retries the same bytes
    code, res = sync_json(root)
    assert code == 0 and res["ok"], res
    bodies = w.faults.count("POST", "/api/progress/upload")
    assert bodies == 2 and w.snapshots("gus") == 1
    keys = [h["idempotency-key"] for m, _, h in w.faults.requests if m == "POST"]
    assert len(set(keys)) == 1
    # lost reply with no retry left: the item stays queued, is re-sent next time, still one row
    tracker.complete(root, 3, skip_tests=True)
    w.faults.lose_replies = 1
    code, res = sync_json(root, env={"TITO_SYNC_RETRIES": "0"})
    assert code == 1 and res["queued"] == 1 and w.snapshots("gus") == 2
    code, res = sync_json(root)
    assert code == 0 and res["sent"] == 1 and w.snapshots("gus") == 2 and "(already up to date)" in res["message"]


def test_timeout_is_retried_then_queued(tmp_path):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)  # accepts connections, never answers
    try:
        root = workspace(tmp_path, completed=[1])
        t0 = time.monotonic()
        code, res = sync_json(root, "--server", f"http://127.0.0.1:{s.getsockname()[1]}",
                              env={"TITO_SYNC_TIMEOUT": "0.3", "TITO_SYNC_RETRIES": "1"})
        assert code == 1 and res["queued"] == 1
        assert "timed out" in res["message"] and "after 2 attempts" in res["message"]
        assert time.monotonic() - t0 < 30
    finally: s.close()


def test_server_that_does_not_hold_the_upload_is_an_error(tmp_path, recorder):
    srv, url = recorder(lie=True)
    root = workspace(tmp_path, completed=[1, 2, 3, 4, 5, 6, 7])
    login(root, url, "tt_x", "ada")
    code, res = sync_json(root)
    assert code == 1 and not res["ok"]
    assert res["message"].startswith(f"sync error: {url} does not hold what was sent (server has 0/20 modules")
    assert "completed modules: sent [1, 2, 3, 4, 5, 6, 7], server has []" in res["message"]
    assert res["server_has"]["modules_completed"] == 0
    srv.lie = False
    code, res = sync_json(root)
    assert code == 0 and "server has 7/20 modules" in res["message"]


def test_consent(tmp_path, recorder):
    srv, url = recorder()
    root = workspace(tmp_path, completed=[1])
    p = tito("--root", root, "sync")
    assert p.returncode == 1 and "not syncing: no server configured" in p.stderr
    assert not (root / ".tito" / "outbox").exists()
    login(root, url, "tt_x", "ada")
    p = tito("--root", root, "sync", env={"TITO_NO_SYNC": "1"})
    assert p.returncode == 1 and "sync is disabled (TITO_NO_SYNC=1)" in p.stderr
    p = tito("--root", root, "sync", "--server", url, env={"TITO_NO_SYNC": "1"})
    assert p.returncode == 1 and srv.seen == [] and not (root / ".tito" / "outbox").exists()
    code, res = sync_json(root)
    assert code == 0 and [(m, a) for m, _, a, _ in srv.seen] == [("POST", "Bearer tt_x"), ("GET", "Bearer tt_x")]


def test_perf_cli(tmp_path):
    blocks = [json.loads(b) for b in __import__("re").findall(r"```json\n(.*?)```", SPEC.read_text(), __import__("re").S)]
    example = next(b for b in blocks if "timer_accuracy" in b)
    d = tmp_path / "tests" / "performance" / "performance_results"; d.mkdir(parents=True)
    (d / "14_profiling_performance_results.json").write_text(json.dumps(example))
    (d / "15_quantization_performance_results.json").write_text('{"x": "{\'ok\': True}", "y": "__import__(\'os\')"}')
    (tmp_path / ".tito").mkdir()
    p = tito("--root", tmp_path, "perf")
    assert p.returncode == 1 and "14_profiling: 3/6 passed" in p.stdout and "ERROR       real_world_scenario  integer modulo by zero" in p.stdout
    assert "UNPARSEABLE y" in p.stdout and "Total: 4/8 tests passed in 2 module(s)" in p.stdout
    p = tito("--root", tmp_path, "perf", "15", "--json")
    data = json.loads(p.stdout)
    assert [m["module"] for m in data["modules"]] == ["15_quantization"] and data["totals"]["failed"] == 1
    p = tito("--root", tmp_path, "perf", "3")
    assert p.returncode == 1 and p.stderr.startswith("tito: error: no performance results for module 3")


# ---------------------------------------------------------------- only the API's reply counts (issue 19, item 8)

PORTAL = b"<html><body>Sign in to the campus wifi to continue</body></html>"


@pytest.mark.parametrize("reply,why", [
    ((200, "text/html; charset=utf-8", PORTAL), "HTTP 200 with text/html, not the progress API's reply (a captive portal or a proxy?)"),
    ((200, "application/json", b""), "HTTP 200 with an empty body, not the progress API's reply"),
    ((204, "", b""), "HTTP 204 with no content type, not the progress API's reply"),
    ((200, "application/json", b'{"ok": true}'), "HTTP 200 with application/json that is not the progress API's reply (status: required field is missing"),
    ((201, "application/json", b'{"status": "stored", "user_id": "ada", "snapshot_id": 1, "latest": true, "modules_completed": 0,'
                                b' "milestones_completed": 0}'), "the server's reply does not match what was sent (modules_completed: sent 2, reply 0)"),
    ((200, "application/json", b'{"status": "stored", "status": "stored"}'), 'that is not the progress API\'s reply (line 1: duplicate key "status")'),
    ((201, "application/json", b'{"status": "stored", "user_id": "ad'), "that is not the progress API's reply (line 1 column"),
])
def test_a_2xx_that_is_not_the_apis_reply_keeps_the_outbox(tmp_path, recorder, reply, why):
    srv, url = recorder()
    root = workspace(tmp_path, completed=[1, 2])
    login(root, url, "tt_x", "ada")
    srv.upload_reply = reply
    code, res = sync_json(root)
    assert code == 1 and not res["ok"] and res["sent"] == 0 and res["queued"] == 1, res
    assert res["message"].startswith(f"upload to {url} not confirmed: ") and why in res["message"], res["message"]
    assert res["message"].endswith("1 snapshot(s) kept in .tito/outbox/ and sent on the next sync") and "\n" not in res["message"]
    assert not (root / ".tito" / "last_sync.json").exists()
    p = tito("--root", root, "sync")  # the text form: one line, no traceback
    assert p.returncode == 1 and len(p.stdout.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    srv.upload_reply = None  # the portal is gone: the same snapshot is delivered once
    code, res = sync_json(root)
    assert code == 0 and res["ok"] and res["queued"] == 0 and "server has 2/20 modules" in res["message"], res
    assert len(srv.received) == 1


def test_an_error_page_that_is_not_the_apis_keeps_the_item_queued(tmp_path, recorder):
    srv, url = recorder()
    root = workspace(tmp_path, completed=[1])
    login(root, url, "tt_x", "ada")
    srv.upload_reply = (403, "text/html", b"<html>Forbidden by the proxy</html>")
    code, res = sync_json(root)
    assert code == 1 and res["queued"] == 1 and res["rejected"] == [], res
    assert res["message"].startswith(f"upload refused by {url}: HTTP 403 (text/html, not the progress API's reply)")
    assert not (root / ".tito" / "outbox" / "rejected").exists()
    srv.upload_reply = (302, "text/html", b"")
    code, res = sync_json(root)
    assert code == 1 and res["queued"] == 1 and "HTTP 302" in res["message"] and "captive portal" in res["message"]
    srv.upload_reply = (422, "application/json", json.dumps({"detail": "inconsistent upload: \x1b[31mred\nline"}).encode())
    code, res = sync_json(root)  # the API's own refusal: the body moves aside, and the server's text stays on one clean line
    assert code == 1 and res["queued"] == 0 and res["rejected"][0].endswith("HTTP 422: inconsistent upload: [31mred line"), res


@pytest.mark.parametrize("held,why", [
    ((200, "text/html", PORTAL), "but the server's progress reply is text/html, not JSON"),
    ((200, "application/json", b'{"user_id": "ada"}'), "but the server's progress reply is not a combined export (timestamp: required field is missing"),
    ((200, "application/json", b"[1, 2]"), "but the server's progress reply is not a combined export ((top level): expected a JSON object"),
])
def test_a_progress_reply_that_is_not_an_export_is_an_error(tmp_path, recorder, held, why):
    srv, url = recorder()
    root = workspace(tmp_path, completed=[1])
    login(root, url, "tt_x", "ada")
    srv.held_reply = held
    code, res = sync_json(root)
    assert code == 1 and not res["ok"] and res["sent"] == 1 and res["message"].startswith(f"uploaded to {url}, {why}"), res["message"]


def test_the_client_reads_the_reply_the_server_sends():
    "The client's `UploadReply` is the server's `UploadResult`, field for field, so the two cannot drift apart."
    from tinytorch_progress.schemas import UploadReply
    from tinytorch_progress.server.routes.api import UploadResult
    ours, theirs = UploadReply.model_json_schema(), UploadResult.model_json_schema()
    assert set(ours["properties"]) == set(theirs["properties"]) and set(ours["required"]) == set(theirs["required"])
    for name, prop in theirs["properties"].items():
        assert ours["properties"][name].get("type") == prop.get("type") and ours["properties"][name].get("enum") == prop.get("enum"), name


# ---------------------------------------------------------------- a snapshot queued for another user id (issue 16)

def demo_left_a_snapshot(tmp_path):
    "A workspace the demo logged in as demo-student to a server that is gone, leaving a queued snapshot."
    root = workspace(tmp_path, completed=[1])
    login(root, f"http://127.0.0.1:{free_port()}", "tt_demo", "demo-student")
    code, res = sync_json(root, env={"TITO_SYNC_RETRIES": "0"})
    assert code == 1 and res["queued"] == 1
    tracker.complete(root, 2, skip_tests=True)
    return root


@pytest.mark.parametrize("with_user_id", [True, False])
def test_a_snapshot_queued_for_another_user_is_not_sent(tmp_path, website, with_user_id):
    root = demo_left_a_snapshot(tmp_path)
    w = website()
    token = w.add_user("ada")
    extra = ["--user-id", "ada"] if with_user_id else []  # without it, the server names the login's user on the first reply
    assert tito("--root", root, "login", "--server", w.url, "--token", token, *extra).returncode == 0
    code, res = sync_json(root)
    assert code == 0 and res["ok"] and res["sent"] == 1 and res["queued"] == 0 and res["rejected"] == [], res
    assert len(res["not_sent"]) == 1 and "queued for user id 'demo-student', but the login is 'ada'" in res["not_sent"][0]
    assert res["message"].startswith(f"synced to {w.url} as ada: server has 2/20 modules")
    assert "1 snapshot(s) not sent, kept in .tito/outbox/not-sent/" in res["message"]
    assert w.faults.count("POST", "/api/progress/upload") == 1 and w.snapshots("ada") == 1  # never sent to be refused
    kept = list((root / ".tito" / "outbox" / "not-sent").glob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["user_id"] == "demo-student"
    assert json.loads((root / ".tito" / "config.json").read_text())["user_id"] == "ada"
    p = tito("--root", root, "sync")  # nothing left to set aside: a plain success
    assert p.returncode == 0 and "not sent" not in p.stdout, p.stdout + p.stderr


def test_damaged_outbox_items_are_set_aside(tmp_path, recorder):
    srv, url = recorder()
    root = workspace(tmp_path, completed=[1])
    login(root, url, "tt_x", "ada")
    ob = root / ".tito" / "outbox"; ob.mkdir()
    (ob / "00000000000000000001-a.json").write_bytes(b"\xff\xfe not json")
    (ob / "00000000000000000002-b.json").write_text('{"user_id": "ada", "module_progress": []}')
    code, res = sync_json(root)
    assert code == 0 and res["ok"] and res["sent"] == 1 and len(res["not_sent"]) == 2, res
    assert "not a JSON object" in res["not_sent"][0] and "not a valid upload (module_progress" in res["not_sent"][1]
    assert len(list((ob / "not-sent").glob("*.json"))) == 2 and len(srv.received) == 1


def test_an_older_snapshot_of_the_same_user_is_superseded_not_sent_after_a_newer_one(tmp_path, website):
    "Logged in without a user id, the first reply names the login's; an older snapshot naming it stays unsent (kept)."
    root = workspace(tmp_path, completed=[1])
    gone = f"http://127.0.0.1:{free_port()}"
    login(root, gone, "tt_old", "ada")  # a server that is gone
    code, res = sync_json(root, env={"TITO_SYNC_RETRIES": "0"})
    assert code == 1 and res["queued"] == 1 and res["message"].startswith(f"server {gone} unreachable: ")
    tracker.complete(root, 2, skip_tests=True)
    w = website()
    assert tito("--root", root, "login", "--server", w.url, "--token", w.add_user("ada")).returncode == 0
    code, res = sync_json(root)
    assert code == 0 and res["ok"] and res["sent"] == 1 and "server has 2/20 modules" in res["message"], res
    assert res["not_sent"] == [] and len(res["superseded"]) == 1 and "not sent" not in res["message"]
    assert res["message"].endswith("; 1 older queued snapshot superseded by the one sent (nothing was lost)"), res["message"]
    assert w.snapshots("ada") == 1 and len(list((root / ".tito" / "outbox" / "not-sent").glob("*.json"))) == 1


def test_login_to_a_server_that_moved_keeps_the_token(tmp_path, website):
    "The class website moved: the old address fails naming itself, `tito login --server NEW` keeps the saved token."
    w = website()
    root = workspace(tmp_path, completed=[1])
    gone = f"http://127.0.0.1:{free_port()}"
    assert tito("--root", root, "login", "--server", gone, "--token", w.add_user("ada")).returncode == 0
    p = tito("--root", root, "sync", env={"TITO_SYNC_RETRIES": "0"})
    assert p.returncode == 1 and gone in p.stdout and f"`tito login --server NEW_URL` keeps your token" in p.stdout, p.stdout
    p = tito("--root", root, "login", "--server", w.url)
    assert p.returncode == 0 and "kept the token saved" in p.stdout, p.stdout + p.stderr
    code, res = sync_json(root)
    assert code == 0 and res["ok"] and "server has 1/20 modules" in res["message"], res
    assert w.snapshots("ada") == 1 and res["not_sent"] == [] and res["superseded"] == [], res


# ---------------------------------------------------------------- leaderboard names (issue 15)

def account(w, name):
    "A student on the (private) website, made with the server's own accounts module: their token."
    from tinytorch_progress.server.accounts import add_user
    return add_user(w.app.state.db.engine, name)


def board(w, token):
    "The names on the leaderboard as the holder of `token` sees it."
    import httpx
    r = httpx.get(f"{w.url}/api/leaderboard", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [e["username"] for e in r.json()["leaderboard"]]


def login_as(root, w, token, *extra, env=None):
    return tito("--root", root, "login", "--server", w.url, "--token", token, *extra, env=env)


@pytest.fixture
def two_students(tmp_path, website):
    "ada and bob, both with progress on the website, logged in without a leaderboard setting."
    w = website()
    toks = {n: account(w, n) for n in ("ada", "bob")}
    roots = {n: workspace(tmp_path, n, completed=[1, 2] if n == "ada" else [1]) for n in toks}
    for n in toks:
        assert login_as(roots[n], w, toks[n]).returncode == 0
        assert sync_json(roots[n])[0] == 0
    return w, toks, roots


def test_a_chosen_name_is_what_other_students_see(two_students):
    w, toks, roots = two_students
    shown = board(w, toks["bob"])
    assert "ada" not in shown and all(n.startswith("student-") for n in shown)  # the default: a stable pseudonym
    assert board(w, toks["bob"]) == shown
    p = login_as(roots["ada"], w, toks["ada"], "--display-name", "Ada.L", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["profile"] == {"display_name": "Ada.L", "on_leaderboard": True}
    assert board(w, toks["bob"])[0] == "Ada.L" and board(w, toks["bob"])[1] == shown[1]
    posts = [h for m, path, h in w.faults.requests if (m, path) == ("POST", "/api/profile")]
    assert [h.get("authorization") for h in posts] == [f"Bearer {toks['ada']}"]
    p = login_as(roots["ada"], w, toks["ada"], "--display-name", "")  # back to her pseudonym
    assert p.returncode == 0 and f"On the leaderboard as {shown[0]}." in p.stdout, p.stdout + p.stderr
    assert board(w, toks["bob"]) == shown


def test_a_taken_name_is_one_line_and_exit_1(two_students):
    w, toks, roots = two_students
    assert login_as(roots["ada"], w, toks["ada"], "--display-name", "Ada.L").returncode == 0
    for name in ("Ada.L", "ada"):  # another student's chosen name, or another's username
        p = login_as(roots["bob"], w, toks["bob"], "--display-name", name)
        assert p.returncode == 1 and "taken" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "Traceback" not in p.stderr and p.stdout == ""
    assert "Ada.L" in board(w, toks["ada"])
    p = login_as(roots["bob"], w, "tt_wrong", "--display-name", "Bobby")  # the server is the one to say the token is wrong
    assert p.returncode == 1 and "HTTP 401: invalid or revoked token; check the token" in p.stderr


def test_leaving_the_leaderboard_and_coming_back(two_students):
    w, toks, roots = two_students
    p = login_as(roots["ada"], w, toks["ada"], "--display-name", "Ada.L", "--no-leaderboard")
    assert p.returncode == 0 and "Not on the leaderboard." in p.stdout, p.stdout + p.stderr
    assert len(board(w, toks["bob"])) == 1 and "Ada.L" not in board(w, toks["bob"])  # omitted for others
    assert "Ada.L" in board(w, toks["ada"])  # she still sees herself
    p = login_as(roots["ada"], w, toks["ada"], "--on-leaderboard")
    assert p.returncode == 0 and "On the leaderboard as Ada.L." in p.stdout
    assert "Ada.L" in board(w, toks["bob"])
    p = login_as(roots["ada"], w, toks["ada"], "--no-leaderboard", "--on-leaderboard")
    assert p.returncode == 2 and "not allowed with argument" in p.stderr


def test_names_are_checked_and_consent_honoured_before_anything_is_sent(two_students):
    w, toks, roots = two_students
    cfg = roots["ada"] / ".tito" / "config.json"
    before, sent = cfg.read_text(), len(w.faults.requests)
    p = login_as(roots["ada"], w, toks["ada"], "--display-name", "Ada.L", env={"TITO_NO_SYNC": "1"})
    assert p.returncode == 1 and p.stderr.strip() == "tito: error: leaderboard setting not sent: sync is disabled (TITO_NO_SYNC=1); nothing was sent"
    for bad, why in (("<b>", "character '<'"), ("a" * 41, "41 characters (at most 40)")):
        p = login_as(roots["ada"], w, toks["ada"], "--display-name", bad)
        assert p.returncode == 1 and why in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert login_as(roots["ada"], w, toks["ada"], "--user-id", "ada").returncode == 0  # no setting asked: offline
    assert len(w.faults.requests) == sent and json.loads(cfg.read_text()) == {**json.loads(before), "user_id": "ada"}


def test_plain_http_to_another_machine_is_refused_as_sync_does(tmp_path, monkeypatch):
    from tinytorch_progress.errors import TitoError
    from tinytorch_progress.profile import set_profile
    from tinytorch_progress.sync import login as save_login
    root = workspace(tmp_path)
    url = "http://192.0.2.1:8000"  # TEST-NET: no such machine; the refusal must come before any connection
    p = tito("--root", root, "login", "--server", url, "--token", "tt_x", "--display-name", "Ada.L")
    assert p.returncode == 1 and "refusing to send your token in clear to 192.0.2.1 over http://" in p.stderr
    monkeypatch.setenv("TITO_ALLOW_HTTP", "1")  # a login made on a network the student trusted...
    save_login(root, url, "tt_x")
    monkeypatch.delenv("TITO_ALLOW_HTTP")  # ...is not a licence to send the token in clear elsewhere
    t0 = time.monotonic()
    with pytest.raises(TitoError, match="refusing to send your token in clear"): set_profile(root, "Ada.L")
    assert time.monotonic() - t0 < 2


def test_a_portal_page_is_not_a_confirmation(tmp_path, recorder):
    srv, url = recorder()
    root = workspace(tmp_path)
    srv.upload_reply = (200, "text/html; charset=utf-8", PORTAL)
    p = tito("--root", root, "login", "--server", url, "--token", "tt_x", "--display-name", "Ada.L")
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"leaderboard setting not confirmed by {url}: HTTP 200 with text/html, not the progress API's reply" in p.stderr
    assert [(m, path, a) for m, path, a, _ in srv.seen] == [("POST", "/api/profile", "Bearer tt_x")]
    srv.upload_reply = (200, "application/json", b'{"display_name": "someone-else", "on_leaderboard": true}')
    p = tito("--root", root, "login", "--server", url, "--token", "tt_x", "--display-name", "Ada.L")
    assert p.returncode == 1 and "does not match what was sent (display_name: sent 'Ada.L', reply 'someone-else')" in p.stderr
