"""The website's API, run against SQLite and a real PostgreSQL server (same suite, parametrized).

PostgreSQL comes from $TITO_TEST_PG_URL (default: the role/database `.ci/postgres.sh` creates); each test gets a fresh
schema. If the server cannot be reached, the PostgreSQL half is skipped with the reason."""
import json, os, uuid
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, insert, select, text

from conftest import run_tito
from tinytorch_progress.errors import TitoError
from tinytorch_progress.schemas import CombinedExport, Leaderboard
from tinytorch_progress import server as srv

PG_URL = os.environ.get("TITO_TEST_PG_URL", "postgresql+psycopg://tito:tito@127.0.0.1:5432/tito_test")


@lru_cache(maxsize=1)
def pg_unavailable():
    "None if PostgreSQL at PG_URL accepts connections, else the reason."
    try:
        eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c: c.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as e:
        return f"PostgreSQL not reachable at {PG_URL.split('@')[-1]}: {str(e).splitlines()[0][:160]}"


def fresh_db(backend, tmp_path):
    "A URL of an empty database on `backend`, and a cleanup function."
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'class.db'}", lambda: None
    reason = pg_unavailable()
    if reason: pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c: c.execute(text(f'CREATE SCHEMA "{schema}"'))
    def cleanup():
        with admin.begin() as c: c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", cleanup


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    url, cleanup = fresh_db(request.param, tmp_path)
    yield url
    cleanup()


@pytest.fixture
def make_client(db_url):
    "make_client(**create_app kwargs) -> (TestClient, app); apps are disposed at the end."
    apps = []
    def make(**kw):  # public unless a test says otherwise: these tests are about uploads and ranking (privacy: test_class_view.py)
        app = srv.create_app(db_url, **{"public": True, **kw})
        apps.append(app)
        return TestClient(app, raise_server_exceptions=False), app
    yield make
    for a in apps: a.state.db.engine.dispose()


@pytest.fixture
def site(make_client):
    "A site with users ada and bob (rate limit high enough not to interfere)."
    client, app = make_client(rate_limit=(1000, 1000.0))
    eng = app.state.db.engine
    tokens = {n: srv.add_user(eng, n) for n in ("ada", "bob")}
    return client, app, tokens


def auth(tok): return {"Authorization": f"Bearer {tok}"}


def staff(app):
    "Headers of an instructor of `app` (created on first use): instructors see usernames and every page, public or not."
    if not hasattr(app.state, "staff_headers"): app.state.staff_headers = auth(srv.add_user(app.state.db.engine, "staff", role="instructor"))
    return app.state.staff_headers


def upload_body(modules=(1, 2, 3), milestones=(("01", True), ("02", False)), total=20, **kw):
    "A consistent upload (the combined export shape minus what the server fills in)."
    ms = [{"id": i, "name": f"Milestone {i}", "unlocked_at": "2025-11-15T10:00:00", "completed": c,
           "completed_at": "2025-11-16T15:00:00" if c else None} for i, c in milestones]
    locked = [{"id": f"{n:02d}", "name": f"Milestone {n:02d}"} for n in range(len(ms) + 1, 7)]
    return {"module_progress": {"total_modules": total, "completed_count": len(modules), "completed_modules": list(modules),
                                "completion_dates": {str(m): f"2025-11-{10 + m:02d}T10:00:00" for m in modules},
                                "last_worked": f"{modules[-1]:02d}" if modules else None,
                                "last_completed": f"{modules[-1]:02d}" if modules else None,
                                "completion_percentage": len(modules) * 100 // total},
            "milestone_progress": {"total_milestones": 6, "unlocked_count": len(ms), "completed_count": sum(c for _, c in milestones),
                                   "unlocked_milestones": ms, "locked_milestones": locked},
            "statistics": {"total_study_time_hours": 1.5, "modules_per_day": 1.0, "current_streak_days": 1, "longest_streak_days": 2},
            "achievements": {"first_module": "2025-11-11T10:00:00", "first_milestone": None, "halfway_point": None}, **kw}


def count(app, model):
    with app.state.db.read() as c: return c.execute(select(func.count()).select_from(model.__table__)).scalar()


def assert_json_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]


# ---- basics and migrations -------------------------------------------------------------------------------------------

def test_healthz_and_migration_table(make_client, db_url):
    client, app = make_client()
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "sqlite" if db_url.startswith("sqlite") else "postgresql",
                        "schema_version": srv.SCHEMA_VERSION}
    with app.state.db.read() as c:
        rows = c.execute(select(srv.SchemaMigration.version, srv.SchemaMigration.name)).all()
    assert [r[0] for r in rows] == [v for v, _, _ in srv.MIGRATIONS]
    # a second start on the same database migrates nothing and keeps the data
    srv.add_user(app.state.db.engine, "ada")
    client2, app2 = make_client()
    assert count(app2, srv.User) == 1 and count(app2, srv.SchemaMigration) == len(srv.MIGRATIONS)


def test_newer_schema_is_refused(make_client, db_url):
    _, app = make_client()
    with app.state.db.engine.begin() as c:
        c.execute(insert(srv.SchemaMigration.__table__).values(version=srv.SCHEMA_VERSION + 1, name="future", applied_at=datetime(2030, 1, 1)))
    with pytest.raises(TitoError, match="newer than this tinytorch-progress"):
        srv.create_app(db_url)


def test_indexes_serve_the_leaderboard_order(make_client, db_url):
    "The leaderboard query is answered from the metric's index, without sorting the table."
    _, app = make_client()
    lb = (select(srv.Standing.user_id).order_by(srv.Standing.modules_completed.desc(), srv.Standing.modules_reached,
                                                srv.Standing.username).limit(50))
    with app.state.db.read() as c:
        sql = str(lb.compile(c, compile_kwargs={"literal_binds": True}))
        if db_url.startswith("sqlite"):
            plan = " ".join(str(r[-1]) for r in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "ix_standings_modules" in plan and "TEMP B-TREE" not in plan, plan
        else:
            c.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(r[0] for r in c.exec_driver_sql(f"EXPLAIN {sql}"))
            assert "ix_standings_modules" in plan and "Sort" not in plan, plan


# ---- upload and read back --------------------------------------------------------------------------------------------

def test_upload_then_read_back(site):
    client, app, tok = site
    body = upload_body(user_id="ada", timestamp="2025-11-22T11:47:59.625329")
    r = client.post("/api/progress/upload", json=body, headers=auth(tok["ada"]))
    assert r.status_code == 201, r.text
    assert r.json() | {"snapshot_id": 0} == {"status": "stored", "user_id": "ada", "snapshot_id": 0, "latest": True,
                                             "modules_completed": 3, "milestones_completed": 1}
    got = client.get("/api/progress/ada")
    assert got.status_code == 200
    exp = CombinedExport.model_validate(got.json())
    assert exp.user_id == "ada" and exp.timestamp.isoformat() == "2025-11-22T11:47:59.625329"
    assert got.json()["module_progress"] == body["module_progress"]
    assert got.json()["statistics"] == body["statistics"] and got.json()["achievements"] == body["achievements"]
    assert got.json()["milestone_progress"]["unlocked_milestones"][0]["name"] == "Milestone 01"


def test_user_id_is_the_token_owner(site):
    client, app, tok = site
    r = client.post("/api/progress/upload", json=upload_body(), headers=auth(tok["bob"]))  # no user_id in the body
    assert r.status_code == 201 and r.json()["user_id"] == "bob"
    assert client.get("/api/progress/bob").json()["user_id"] == "bob"
    assert client.get("/api/progress/bob").json()["timestamp"]  # filled in by the server


def test_identical_reupload_is_idempotent(site):
    client, app, tok = site
    body = upload_body(user_id="ada")
    first = client.post("/api/progress/upload", json=body, headers=auth(tok["ada"]))
    again = [client.post("/api/progress/upload", json=body, headers=auth(tok["ada"])) for _ in range(3)]
    assert first.status_code == 201
    assert {r.status_code for r in again} == {200}
    assert {r.json()["status"] for r in again} == {"unchanged"}
    assert {r.json()["snapshot_id"] for r in again} == {first.json()["snapshot_id"]}
    assert count(app, srv.Snapshot) == 1
    n_events = count(app, srv.Event)
    client.post("/api/progress/upload", json=body, headers=auth(tok["ada"]))
    assert count(app, srv.Event) == n_events


def test_history_is_kept_and_the_latest_is_the_last_received(site):
    "The server's receive order decides the latest, not the client's timestamp (issue 19.3; more in test_server_hardening)."
    client, app, tok = site
    h = auth(tok["ada"])
    client.post("/api/progress/upload", json=upload_body((1,), timestamp="2025-11-10T10:00:00"), headers=h)
    client.post("/api/progress/upload", json=upload_body((1, 2, 3, 4), timestamp="2025-11-20T10:00:00"), headers=h)
    late = client.post("/api/progress/upload", json=upload_body((1, 2), timestamp="2025-11-15T10:00:00"), headers=h)
    assert late.status_code == 201 and late.json()["latest"] is True
    assert client.get("/api/progress/ada").json()["module_progress"]["completed_count"] == 2
    assert count(app, srv.Snapshot) == 3


def test_events_follow_snapshots(site):
    client, app, tok = site
    h = auth(tok["ada"])
    client.post("/api/progress/upload", json=upload_body((1, 2), (("01", False),)), headers=h)
    client.post("/api/progress/upload", json=upload_body((1, 3), (("01", True),)), headers=h)
    with app.state.db.read() as c:
        evs = [tuple(r) for r in c.execute(select(srv.Event.kind, srv.Event.subject).order_by(srv.Event.id))]
    assert evs == [("module_completed", "01"), ("module_completed", "02"), ("milestone_unlocked", "01"),
                   ("module_completed", "03"), ("module_reset", "02"), ("milestone_completed", "01")]


def test_get_progress_errors(site):
    client, app, tok = site
    h = staff(app)
    assert_json_error(client.get("/api/progress/ada", headers=h), 404)  # user exists, nothing uploaded
    assert_json_error(client.get("/api/progress/nobody", headers=h), 404)
    assert_json_error(client.get("/api/progress/a%00b", headers=h), 422)
    assert_json_error(client.get("/api/progress/" + "x" * 200, headers=h), 422)


def test_non_ascii_user_ids_are_refused_with_the_one_rule(make_client):
    "User ids follow `ids.check_user_id` (ASCII letters, digits, . _ @ + -): refused when created, uploaded or read."
    client, app = make_client()
    with pytest.raises(TitoError, match="user id 'zoë-Ω': character 'ë' \\(U\\+00EB\\) at position 3"):
        srv.add_user(app.state.db.engine, "zoe", "zoë-Ω")
    tok = srv.add_user(app.state.db.engine, "zoe", "zoe-o")
    r = client.post("/api/progress/upload", json=upload_body(user_id="zoë-Ω"), headers=auth(tok))
    assert_json_error(r, 422)
    assert r.json()["detail"].startswith("body: user_id") and "'zoë-Ω': character 'ë' (U+00EB)" in r.json()["detail"]
    assert_json_error(client.get("/api/progress/zo%C3%AB-%CE%A9"), 422)
    assert client.post("/api/progress/upload", json=upload_body(user_id="zoe-o"), headers=auth(tok)).status_code == 201
    assert client.get("/api/progress/zoe-o").json()["user_id"] == "zoe-o"


# ---- security --------------------------------------------------------------------------------------------------------

def test_token_cannot_write_another_users_progress(site):
    client, app, tok = site
    r = client.post("/api/progress/upload", json=upload_body(user_id="bob"), headers=auth(tok["ada"]))
    assert_json_error(r, 403)
    assert "does not belong to this token" in r.json()["detail"]
    assert count(app, srv.Snapshot) == 0
    assert_json_error(client.get("/api/progress/bob"), 404)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic YWRhOnB3", "Token abc", "Bearer not-a-token",
                                    "Bearer " + "x" * 600])
def test_missing_or_invalid_token_is_401(site, header):
    client, app, tok = site
    h = {} if header is None else {"Authorization": header}
    r = client.post("/api/progress/upload", json=upload_body(), headers=h)
    assert_json_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert count(app, srv.Snapshot) == 0


def test_revoked_token_is_401(site):
    client, app, tok = site
    srv.revoke(app.state.db.engine, "ada")
    assert_json_error(client.post("/api/progress/upload", json=upload_body(), headers=auth(tok["ada"])), 401)
    new = srv.issue_token(app.state.db.engine, "ada")
    assert client.post("/api/progress/upload", json=upload_body(), headers=auth(new)).status_code == 201


def test_tokens_are_stored_hashed(site):
    client, app, tok = site
    with app.state.db.read() as c:
        stored = [r[0] for r in c.execute(select(srv.Token.token_hash))]
    assert len(stored) == 2 and not set(tok.values()) & set(stored)
    assert srv.hash_token(tok["ada"]) in stored


def test_oversized_bodies_are_413(site):
    client, app, tok = site
    big = json.dumps(upload_body(padding="x" * (256 * 1024))).encode()
    assert_json_error(client.post("/api/progress/upload", content=big, headers=auth(tok["ada"]) | {"content-type": "application/json"}), 413)
    def chunks():  # no Content-Length: counted while reading
        for _ in range(300): yield b"x" * 1024
    assert_json_error(client.post("/api/progress/upload", content=chunks(), headers=auth(tok["ada"])), 413)
    # exactly at the limit is read (and then rejected as not JSON, not as too large)
    assert client.post("/api/progress/upload", content=b" " * srv.MAX_BODY, headers=auth(tok["ada"])).status_code == 400
    assert count(app, srv.Snapshot) == 0


@pytest.mark.parametrize("body,status,says", [
    (b"", 400, "empty"),
    (b"{not json", 400, "invalid JSON"),
    (b'{"a": NaN}', 400, "NaN"),
    (b"\xff\xfe\x00garbage", 400, "UTF-8"),
    (b"[1, 2]", 422, "expected a JSON object"),
    (b'"text"', 422, "expected a JSON object"),
    (b"{}", 422, "module_progress: required field is missing"),
    (json.dumps(upload_body() | {"module_progress": {"total_modules": "many"}}).encode(), 422, "module_progress"),
    (json.dumps(upload_body(timestamp="yesterday")).encode(), 422, "timestamp"),
    (json.dumps(upload_body(version="9.0")).encode(), 422, "newer than"),
    (json.dumps(upload_body(user_id="")).encode(), 422, "user_id"),
    (json.dumps(upload_body() | {"deep": json.loads("[" * 500 + "]" * 500)}).encode(), 422, "nested deeper"),
    (b'{"module_progress": {"total_modules": 1e999}}', 422, "module_progress"),
    (b'{"x": "\\udc00"}', 422, "Unicode"),
    (("[" * 100_000 + "]" * 100_000).encode(), 400, "nested too deeply"),
])
def test_malformed_bodies_are_4xx(site, body, status, says):
    client, app, tok = site
    r = client.post("/api/progress/upload", content=body, headers=auth(tok["ada"]) | {"content-type": "application/json"})
    assert_json_error(r, status)
    assert says in r.json()["detail"], r.json()["detail"]
    assert count(app, srv.Snapshot) == 0


def test_server_side_consistency_check(site):
    client, app, tok = site
    bad = upload_body((1, 2, 3))
    bad["module_progress"]["completed_count"] = 12
    r = client.post("/api/progress/upload", json=bad, headers=auth(tok["ada"]))
    assert_json_error(r, 422)
    assert "module_progress.completed_count: 12 but completed_modules lists 3" in r.json()["detail"]
    bad = upload_body(milestones=(("01", False),))
    bad["milestone_progress"]["completed_count"] = 1  # a completion without a completed unlocked milestone
    assert_json_error(client.post("/api/progress/upload", json=bad, headers=auth(tok["ada"])), 422)
    bad = upload_body(milestones=())
    bad["milestone_progress"]["locked_milestones"][0] |= {"completed": True}  # extra fields on a locked one don't count
    bad["milestone_progress"]["completed_count"] = 1
    assert_json_error(client.post("/api/progress/upload", json=bad, headers=auth(tok["ada"])), 422)
    assert count(app, srv.Snapshot) == 0


def test_rate_limit_is_per_token_with_retry_after(make_client):
    client, app = make_client(rate_limit=(3, 0.05))
    eng = app.state.db.engine
    a, b = srv.add_user(eng, "ada"), srv.add_user(eng, "bob")
    codes = [client.post("/api/progress/upload", json=upload_body(), headers=auth(a)).status_code for _ in range(5)]
    assert codes == [201, 200, 200, 429, 429]
    r = client.post("/api/progress/upload", json=upload_body(), headers=auth(a))
    assert_json_error(r, 429)
    assert 1 <= int(r.headers["retry-after"]) <= 20
    assert client.post("/api/progress/upload", json=upload_body(), headers=auth(b)).status_code == 201


def test_every_error_is_json(site):
    client, app, tok = site
    assert_json_error(client.get("/no/such/page"), 404)
    assert_json_error(client.delete("/api/progress/upload"), 405)
    assert_json_error(client.get("/api/progress/upload", headers=staff(app)), 404)
    assert_json_error(client.get("/api/leaderboard?limit=abc"), 422)
    assert_json_error(client.post("/api/progress/upload", content=b"{}", headers=auth(tok["ada"]) | {"content-length": "nope"}), 400)


def test_a_bug_in_an_upload_is_a_json_500(site, monkeypatch):
    "A bug (never the client's doing) in the upload route is still a JSON 500 that leaks nothing."
    client, app, tok = site
    def broken(*args): raise RuntimeError("a bug, not the client's doing")
    from tinytorch_progress.server.routes import api
    monkeypatch.setattr(api, "receive_upload", broken)
    r = client.post("/api/progress/upload", json=upload_body(), headers=auth(tok["ada"]))
    assert (r.status_code, r.json(), r.headers["content-type"]) == (500, {"detail": "internal server error"}, "application/json")


def test_concurrent_uploads_store_each_distinct_body_once(site):
    client, app, tok = site
    users = [srv.user_for_token(app.state.db.engine, tok[n]) for n in ("ada", "bob")]
    bodies = [upload_body(tuple(range(1, k + 1)), timestamp=f"2025-11-{10 + k:02d}T10:00:00") for k in range(1, 6)]
    jobs = [(u, b) for u in users for b in bodies for _ in range(4)]
    def send(job):
        u, b = job
        return srv.store_upload(app.state.db, u, srv.parse_upload(json.dumps(b).encode()))["status"]
    with ThreadPoolExecutor(8) as ex: statuses = list(ex.map(send, jobs))
    assert statuses.count("stored") == 10 and statuses.count("unchanged") == 30
    assert count(app, srv.Snapshot) == 10
    for u in users:  # the latest is the snapshot stored last, whatever order the threads ran in
        with app.state.db.read() as c:
            last = c.execute(select(srv.Snapshot.data).where(srv.Snapshot.user_pk == u["pk"])
                             .order_by(srv.Snapshot.id.desc()).limit(1)).scalar()
        assert client.get(f"/api/progress/{u['user_id']}").json() == json.loads(last)
    assert_counters_consistent(app)


def assert_counters_consistent(app):
    "The counters the uploads maintained equal the ones recomputed from the standings."
    with app.state.db.read() as c:
        kept = {(r.counter, r.bucket): r.students for r in c.execute(select(srv.Counter.__table__)) if r.students}
    with app.state.db.write() as c:
        srv.rebuild_counters(c)
    with app.state.db.read() as c:
        rebuilt = {(r.counter, r.bucket): r.students for r in c.execute(select(srv.Counter.__table__))}
    assert kept == rebuilt and rebuilt


def test_leaderboard_pages_match_a_brute_force_ranking(site):
    "Random scores and re-uploads: every page, both metrics, equals ranking the standings by hand."
    import random
    client, app, tok = site
    rng = random.Random(8)
    eng = app.state.db.engine
    names = [f"s{i:02d}" for i in range(40)]
    toks = {n: srv.add_user(eng, n) for n in names}
    reached = {}  # (metric, name) -> order in which the current score was reached
    scores = {}
    for step in range(120):
        n = rng.choice(names)
        mods, stones = rng.randint(0, 6), rng.randint(0, 3)
        ms = tuple((f"{i:02d}", i <= stones) for i in range(1, max(stones, 1) + 1))
        r = client.post("/api/progress/upload", json=upload_body(tuple(range(1, mods + 1)), ms, timestamp=f"2025-11-01T00:{step // 60:02d}:{step % 60:02d}"),
                        headers=auth(toks[n]))
        assert r.status_code == 201, r.text
        old = scores.get(n)
        for i, m in enumerate(("modules_completed", "milestones_completed")):
            if old is None or old[i] != (mods, stones)[i]: reached[(m, n)] = step
        scores[n] = (mods, stones)
    for i, metric in enumerate(("modules_completed", "milestones_completed")):
        order = sorted(scores, key=lambda n: (-scores[n][i], reached[(metric, n)], n))
        expect = [(n, 1 + sum(scores[o][i] > scores[n][i] for o in scores)) for n in order]
        got = []
        for off in range(0, len(order) + 7, 7):
            got += [(e["username"], e["rank"]) for e in
                    client.get(f"/api/leaderboard?metric={metric}&limit=7&offset={off}", headers=staff(app)).json()["leaderboard"]]
        assert got == expect
    assert_counters_consistent(app)


# ---- leaderboard -----------------------------------------------------------------------------------------------------

def _seed(client, app, scores):
    "scores: [(username, modules, milestones)] uploaded in this order."
    eng = app.state.db.engine
    for name, mods, stones in scores:
        tok = srv.add_user(eng, name)
        ms = tuple((f"{i:02d}", i <= stones) for i in range(1, max(stones, 1) + 1))
        r = client.post("/api/progress/upload", json=upload_body(tuple(range(1, mods + 1)), ms), headers=auth(tok))
        assert r.status_code == 201, r.text


def test_leaderboard_competition_ranking_and_ties(site):
    client, app, tok = site
    _seed(client, app, [("zed", 7, 1), ("cat", 9, 2), ("amy", 7, 3), ("dov", 7, 0), ("eli", 2, 2)])
    r = client.get("/api/leaderboard", headers=staff(app))
    assert r.status_code == 200
    lb = Leaderboard.model_validate(r.json())
    assert [(e.username, e.modules_completed, e.rank) for e in lb.leaderboard] == [
        ("cat", 9, 1), ("zed", 7, 2), ("amy", 7, 2), ("dov", 7, 2), ("eli", 2, 5)]  # zed reached 7 first
    r = client.get("/api/leaderboard?metric=milestones_completed", headers=staff(app))
    assert [(e["username"], e["milestones_completed"], e["rank"]) for e in r.json()["leaderboard"]] == [
        ("amy", 3, 1), ("cat", 2, 2), ("eli", 2, 2), ("zed", 1, 4), ("dov", 0, 5)]
    assert set(r.json()["leaderboard"][0]) >= {"user_id", "username", "modules_completed", "milestones_completed", "rank"}


def test_leaderboard_pages_keep_ranks(site):
    client, app, tok = site
    _seed(client, app, [("u1", 5, 0), ("u2", 4, 0), ("u3", 4, 0), ("u4", 4, 0), ("u5", 3, 0), ("u6", 3, 0)])
    full = [(e["username"], e["rank"]) for e in client.get("/api/leaderboard?limit=100", headers=staff(app)).json()["leaderboard"]]
    assert full == [("u1", 1), ("u2", 2), ("u3", 2), ("u4", 2), ("u5", 5), ("u6", 5)]
    paged = []
    for off in range(0, 6, 2):
        paged += [(e["username"], e["rank"]) for e in client.get(f"/api/leaderboard?limit=2&offset={off}", headers=staff(app)).json()["leaderboard"]]
    assert paged == full
    assert client.get("/api/leaderboard?offset=100", headers=staff(app)).json()["leaderboard"] == []


def test_ties_go_to_who_reached_the_score_first(site):
    client, app, tok = site
    _seed(client, app, [("amy", 3, 0), ("bea", 3, 0)])
    h = auth(srv.issue_token(app.state.db.engine, "amy"))
    # amy re-uploads the same score with other details: she keeps her place
    client.post("/api/progress/upload", json=upload_body((1, 2, 3), (), statistics={"total_study_time_hours": 9}), headers=h)
    assert [e["username"] for e in client.get("/api/leaderboard", headers=staff(app)).json()["leaderboard"]] == ["amy", "bea"]
    # amy drops to 2 then climbs back to 3: bea reached 3 first now
    client.post("/api/progress/upload", json=upload_body((1, 2), ()), headers=h)
    client.post("/api/progress/upload", json=upload_body((1, 2, 4), ()), headers=h)
    assert [(e["username"], e["rank"]) for e in client.get("/api/leaderboard", headers=staff(app)).json()["leaderboard"]] == [("bea", 1), ("amy", 1)]


@pytest.mark.parametrize("query", ["metric=password", "metric=modules_completed;DROP TABLE users", "metric=",
                                   "limit=0", "limit=501", "limit=-1", "offset=-1", "offset=99999999999999999999",
                                   "limit=1.5"])
def test_leaderboard_rejects_bad_parameters(site, query):
    client, app, tok = site
    assert_json_error(client.get(f"/api/leaderboard?{query}"), 422)
    assert count(app, srv.User) == 2


# ---- dashboard -------------------------------------------------------------------------------------------------------

def test_dashboard_pages(site):
    client, app, tok = site
    _seed(client, app, [("cat", 9, 2), ("amy", 7, 3)])
    r = client.get("/", headers=staff(app))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline'; img" in csp and "default-src 'none'" in csp  # own files only
    assert "<script" not in r.text  # the overview runs none (only the class view refreshes itself)
    assert '<a href="/u/cat">cat</a>' in r.text and 'id="distribution"' in r.text and 'id="milestones"' in r.text
    assert "2 of 4 students have uploaded progress." in r.text
    u = client.get("/u/amy")
    assert u.status_code == 200 and 'id="modules"' in u.text and "1957: Perceptron" not in u.text  # names come from the upload
    assert "<strong>7/20</strong> modules" in u.text and "Milestone 03" in u.text
    assert "No progress uploaded yet" in client.get("/u/ada").text  # public: ada is on the leaderboard


def test_dashboard_escapes_user_text(make_client):
    client, app = make_client()
    eng = app.state.db.engine
    with pytest.raises(TitoError, match="character '<'"):  # names cannot carry markup at all
        srv.add_user(eng, "mal", '<img src=x onerror=alert(1)>')
    tok = srv.add_user(eng, "mal")
    body = upload_body(user_id="mal")
    body["milestone_progress"]["unlocked_milestones"][0]["name"] = '<script>alert("x")</script>'
    body["milestone_progress"]["unlocked_milestones"][1]["name"] = '<img src=x onerror=alert(1)>'
    body["statistics"]["<b>note</b>"] = "<i>hi</i>"
    assert client.post("/api/progress/upload", json=body, headers=auth(tok)).status_code == 201
    page = client.get("/u/mal").text
    assert "<script>" not in page and "<img" not in page and "<b>note" not in page and "<i>hi" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_dashboard_unknown_user_and_bad_params(site):
    client, app, tok = site
    r = client.get("/u/nobody", headers={"accept": "text/html", **staff(app)})
    assert r.status_code == 404 and "Not found" in r.text and "text/html" in r.headers["content-type"]
    assert_json_error(client.get("/u/nobody", headers=staff(app)), 404)
    assert_json_error(client.get("/u/nobody"), 401)  # to anyone else, nobody and a student who left the leaderboard look alike
    assert_json_error(client.get("/u/%3Cscript%3E"), 422)
    assert_json_error(client.get("/?metric=x"), 422)


# ---- the admin CLI against this backend ------------------------------------------------------------------------------

def test_server_cli_commands(db_url, tmp_path):
    r = run_tito("server", "add-user", "ada", "--db", db_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    token = r.stdout.split("token: ")[1].split()[0]
    r = run_tito("server", "add-user", "ada", "--db", db_url, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("tito: error: user 'ada'") and "Traceback" not in r.stderr
    r = run_tito("server", "list-users", "--json", "--db", db_url, cwd=tmp_path)
    rows = json.loads(r.stdout)
    assert [(x["username"], x["active_tokens"]) for x in rows] == [("ada", 1)] and token not in r.stdout
    app = srv.create_app(db_url)
    try:
        assert srv.user_for_token(app.state.db.engine, token)["username"] == "ada"
        r = run_tito("server", "revoke", "ada", "--db", db_url, cwd=tmp_path)
        assert r.returncode == 0 and r.stdout.strip() == "revoked 1 token of ada"
        assert srv.user_for_token(app.state.db.engine, token) is None
    finally:
        app.state.db.engine.dispose()


def test_bad_database_urls_are_one_line_errors(tmp_path):
    for url in ("mysql://x/y", "nonsense://", f"{tmp_path}/missing/dir/x.db",
                "postgresql://nobody:wrong@127.0.0.1:1/none"):
        r = run_tito("server", "list-users", "--db", url, cwd=tmp_path)
        assert r.returncode == 1 and r.stderr.startswith("tito: error:"), (url, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "wrong" not in r.stderr


@pytest.mark.parametrize("durable", [False, True])
def test_durability_setting_reaches_the_database(db_url, durable):
    db = srv.Db(db_url, durable=durable)
    try:
        with db.write() as c:
            if db.dialect == "postgresql":
                assert c.exec_driver_sql("SHOW synchronous_commit").scalar() == ("on" if durable else "off")
            else:
                assert c.exec_driver_sql("PRAGMA synchronous").scalar() == (2 if durable else 1)  # FULL / NORMAL
                assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally: db.engine.dispose()


# ---- the package -----------------------------------------------------------------------------------------------------

def test_package_names_resolve_to_their_modules():
    "`tinytorch_progress.server.NAME` is the object of the one module that exports NAME."
    import importlib
    seen = {}
    for m in srv.MODULES:
        mod = importlib.import_module(f"tinytorch_progress.server.{m}")
        for name in mod.__all__:
            assert name not in seen, f"{name} exported by both {seen[name]} and {m}"
            seen[name] = m
            assert getattr(srv, name) is getattr(mod, name)
    assert {"create_app", "add_user", "Db", "Snapshot", "leaderboard", "parse_upload", "store_upload", "render", "Instructor"} <= seen.keys()
    with pytest.raises(AttributeError): srv.no_such_name


def test_server_layers():
    """Server modules import only readers/core and lower server modules (the routes sit between `deps` and `app`); the
    admin path loads no web stack."""
    import ast, subprocess, sys
    from pathlib import Path
    pkg = Path(srv.__file__).parent
    order = list(srv.MODULES[:-2]) + ["routes.api", "routes.pages", "routes.auth", "hub", "app", "serving"]  # the hub replaces routes.auth's sign-in
    for m in order:
        tree = ast.parse((pkg / f"{m.replace('.', '/')}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:  # nbdev writes the package's own imports relative
                here = ["tinytorch_progress", "server", *m.split(".")[:-1]]
                name = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                names = [f"{name}.{a.name}" if f"{name}.{a.name}".removeprefix("tinytorch_progress.server.") in order else name
                         for a in node.names]
                for full in names:
                    parts = full.split(".")
                    assert parts[1] not in ("views", "commands", "cli", "magics", "display", "plots") and not parts[1].startswith("cmd_"), (m, full)
                    if parts[1] == "server" and len(parts) > 2:
                        assert order.index(".".join(parts[2:])) < order.index(m), (m, full)
    code = ("import sys; from tinytorch_progress.server import add_user, Db; "
            "print(sorted(k for k in ('fastapi', 'jinja2', 'starlette') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
