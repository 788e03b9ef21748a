"""End to end: the real `tito serve` in a subprocess on a free 127.0.0.1 port, users created with the real
`tito server add-user`, uploads over real HTTP (httpx), then two workspaces `tito login` + `tito sync` to it, and the
leaderboard and dashboard reflect all of it."""
import importlib.util, json, os, signal, time

import httpx
import pytest

from conftest import run_tito, tito_serve
from test_server import upload_body

pytestmark = pytest.mark.slow  # `tito serve` and `tito sync` in processes of their own


def start_serve(tmp_path, *extra):
    "`tito serve --public EXTRA` in `tmp_path` (no database named in the environment), in a session of its own; yields (URL, process)."
    env = {k: v for k, v in os.environ.items() if k != "TITO_SERVER_DB"} | {"NO_COLOR": "1"}
    return tito_serve(tmp_path, "--public", "--log-level", "warning", *extra, env=env, start_new_session=True)


@pytest.fixture
def served(tmp_path):
    "`tito serve` with no --db, from an empty folder: the default database file appears there."
    with start_serve(tmp_path) as (url, proc): yield url, tmp_path, proc


def add_user(cwd, name, *extra) -> str:
    r = run_tito("server", "add-user", name, *extra, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout.split("token: ")[1].split()[0]


def test_serve_upload_and_leaderboard_over_http(served):
    url, cwd, proc = served
    assert (cwd / "tito-server.db").exists()
    tokens = {n: add_user(cwd, n) for n in ("ada", "bob")}
    staff = {"Authorization": f"Bearer {add_user(cwd, 'prof', '--role', 'instructor')}"}  # a public site shows strangers chosen names
    with httpx.Client(base_url=url, timeout=10) as c:
        h = lambda n: {"Authorization": f"Bearer {tokens[n]}"}
        r = c.post("/api/progress/upload", json=upload_body((1, 2, 3, 4), user_id="ada"), headers=h("ada"))
        assert r.status_code == 201, r.text
        r = c.post("/api/progress/upload", json=upload_body((1, 2), (("01", True),)), headers=h("bob"))
        assert r.status_code == 201, r.text
        assert c.post("/api/progress/upload", json=upload_body((1, 2), (("01", True),)), headers=h("bob")).json()["status"] == "unchanged"
        # over real HTTP too: another user's id is refused, a missing token is 401, an oversized chunked body is 413
        assert c.post("/api/progress/upload", json=upload_body(user_id="bob"), headers=h("ada")).status_code == 403
        assert c.post("/api/progress/upload", json=upload_body()).status_code == 401
        big = c.post("/api/progress/upload", content=(b"x" * 4096 for _ in range(100)), headers=h("ada"))
        assert big.status_code == 413 and big.json()["detail"].startswith("request body too large")
        lb = c.get("/api/leaderboard", headers=staff).json()["leaderboard"]
        assert [(e["username"], e["modules_completed"], e["milestones_completed"], e["rank"]) for e in lb] == [
            ("ada", 4, 1, 1), ("bob", 2, 1, 2)]
        assert [e["username"] for e in c.get("/api/leaderboard?metric=milestones_completed", headers=staff).json()["leaderboard"]] == ["ada", "bob"]
        assert c.get("/api/progress/bob").json()["module_progress"]["completed_modules"] == [1, 2]
        page = c.get("/", headers=staff).text
        assert '<a href="/u/ada">ada</a>' in page and '<a href="/u/bob">bob</a>' in page
    # the admin CLI sees the uploads the server stored
    r = run_tito("server", "list-users", "--json", cwd=cwd)
    assert {(u["username"], u["modules_completed"]) for u in json.loads(r.stdout)} == {("ada", 4), ("bob", 2), ("prof", None)}
    # revoking takes effect on the running server at once
    assert run_tito("server", "revoke", "ada", cwd=cwd).returncode == 0
    assert httpx.post(f"{url}/api/progress/upload", json=upload_body(), headers={"Authorization": f"Bearer {tokens['ada']}"}).status_code == 401
    # Ctrl-C stops it cleanly
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0


@pytest.mark.skipif(importlib.util.find_spec("tinytorch_progress.sync") is None, reason="the sync client is not in this build")
def test_two_workspaces_sync_to_the_server(served, tmp_path):
    url, cwd, proc = served
    work = tmp_path / "students"; work.mkdir()
    plan = {"carol": ["01", "02", "03"], "dave": ["01"]}
    for name, modules in plan.items():
        token = add_user(cwd, name)
        ws = work / name
        assert run_tito("init", ws, cwd=work).returncode == 0
        for m in modules:
            r = run_tito("--root", ws, "module", "complete", m, "--skip-tests", cwd=work)
            assert r.returncode == 0, r.stderr
        r = run_tito("--root", ws, "login", "--server", url, "--token", token, cwd=work)
        assert r.returncode == 0, r.stderr
        assert token not in r.stdout
        r = run_tito("--root", ws, "sync", cwd=work)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert f"as {name}" in r.stdout
        again = run_tito("--root", ws, "sync", cwd=work)
        assert again.returncode == 0, again.stderr
    staff = {"Authorization": f"Bearer {add_user(cwd, 'prof', '--role', 'instructor')}"}
    lb = httpx.get(f"{url}/api/leaderboard", headers=staff).json()["leaderboard"]
    assert [(e["username"], e["modules_completed"], e["rank"]) for e in lb] == [("carol", 3, 1), ("dave", 1, 2)]
    held = httpx.get(f"{url}/api/progress/carol").json()
    assert held["user_id"] == "carol" and held["module_progress"]["completed_modules"] == [1, 2, 3]
    rows = {u["username"]: u for u in json.loads(run_tito("server", "list-users", "--json", cwd=cwd).stdout)}
    assert rows["carol"]["modules_completed"] == 3 and rows["dave"]["modules_completed"] == 1
    from sqlalchemy import func, select
    from tinytorch_progress import server as srv
    db = srv.Db(f"sqlite:///{cwd / 'tito-server.db'}")
    def snapshots():
        with db.read() as c: return c.execute(select(func.count()).select_from(srv.Snapshot.__table__)).scalar()
    try:
        before = snapshots()
        for name in plan:  # nothing changed since: the client re-sends the same bytes and the server stores nothing
            r = run_tito("--root", work / name, "sync", cwd=work)
            assert r.returncode == 0 and "already up to date" in r.stdout, (r.stdout, r.stderr)
        assert snapshots() == before
    finally: db.engine.dispose()
    page = httpx.get(f"{url}/u/carol").text
    assert "<strong>3/20</strong> modules" in page


def test_serve_with_worker_processes_on_postgresql(tmp_path):
    "PostgreSQL for scale: `tito serve --workers 2`, users added with the CLI against the same database."
    from test_server import fresh_db
    db, cleanup = fresh_db("postgresql", tmp_path)
    try:
        tokens = {}
        for n, *role in (("ada",), ("bob",), ("prof", "--role", "instructor")):
            r = run_tito("server", "add-user", n, *role, "--db", db, cwd=tmp_path)
            assert r.returncode == 0, r.stderr
            tokens[n] = r.stdout.split("token: ")[1].split()[0]
        with start_serve(tmp_path, "--db", db, "--workers", "2") as (url, proc):
            with httpx.Client(base_url=url, timeout=10) as c:
                for i, n in enumerate(("ada", "bob")):
                    r = c.post("/api/progress/upload", json=upload_body(tuple(range(1, 3 + i))), headers={"Authorization": f"Bearer {tokens[n]}"})
                    assert r.status_code == 201, r.text
                staff = {"Authorization": f"Bearer {tokens['prof']}"}
                codes = {c.get("/api/leaderboard", headers=staff).status_code for _ in range(20)}
                assert codes == {200}
                assert [(e["username"], e["rank"]) for e in c.get("/api/leaderboard", headers=staff).json()["leaderboard"]] == [("bob", 1), ("ada", 2)]
            assert not (tmp_path / "tito-server.db").exists()
        log = (tmp_path / "serve.log").read_text()  # stopped: shut down cleanly
        assert "Traceback" not in log, log
    finally: cleanup()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_killed_server_keeps_every_upload_it_acknowledged(tmp_path, backend):
    "`tito serve` SIGKILLed while eight clients upload: every upload it answered 201 is stored, once, with its counters."
    import threading
    from sqlalchemy import select
    from tinytorch_progress import server as srv
    from test_server import assert_counters_consistent, fresh_db
    from types import SimpleNamespace
    url, cleanup = fresh_db(backend, tmp_path)
    try:
        admin = srv.Db(url)
        tokens = [srv.add_user(admin.engine, f"s{i}") for i in range(64)]  # eight each: none reaches the history kept (20)
        admin.engine.dispose()
        with start_serve(tmp_path, "--db", url) as (base, proc):
            acked, stop_at = {}, time.monotonic() + 60
            def client(i):
                with httpx.Client(base_url=base, timeout=10) as c:
                    for k in range(10_000):
                        u = i + 8 * (k % 8)
                        body = upload_body(tuple(range(1, 1 + k % 20)), statistics={"total_study_time_hours": k})
                        try: r = c.post("/api/progress/upload", json=body, headers={"Authorization": f"Bearer {tokens[u]}"})
                        except httpx.TransportError: return  # the server is gone
                        if r.status_code == 201: acked[r.json()["snapshot_id"]] = (f"s{u}", k)
                        if time.monotonic() > stop_at: return
            threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
            for t in threads: t.start()
            while len(acked) < 200 and time.monotonic() < stop_at: time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL); proc.wait(15)
            for t in threads: t.join(30)
        assert len(acked) >= 200
        db = srv.Db(url)
        try:
            ut, snap = srv.User.__table__, srv.Snapshot.__table__
            with db.read() as c:
                kept = {r.id: (r.username, json.loads(r.data)["statistics"]["total_study_time_hours"])
                        for r in c.execute(select(snap.c.id, snap.c.data, ut.c.username).join(ut, ut.c.id == snap.c.user_pk))}
            assert {i: kept.get(i) for i in acked} == acked  # each acknowledged upload, as sent
            assert_counters_consistent(SimpleNamespace(state=SimpleNamespace(db=db)))
        finally: db.engine.dispose()
    finally: cleanup()
