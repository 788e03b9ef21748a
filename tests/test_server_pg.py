"""Uploads on PostgreSQL (`server.ingest.store_upload`, the same path as SQLite's): uploads of one student through two
processes (or threads) take turns on the student's row and each builds on the standing the one before it left; the
refusals of an upload come in their order (token, rate limit, body, owner); and connections the database dropped are
replaced before they are used (the pool's pre-ping), without failing a request.
Each test gets a fresh schema; they are skipped, with the reason, when PostgreSQL cannot be reached."""
import json, random, time, uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from tinytorch_progress import server as srv
from test_server import PG_URL, assert_counters_consistent, auth, fresh_db, upload_body


@pytest.fixture
def pg(tmp_path):
    "(URL of a fresh schema whose connections carry an application name of their own, that name)."
    url, cleanup = fresh_db("postgresql", tmp_path)
    name = f"tito_{uuid.uuid4().hex[:10]}"
    dbs = []
    def open_db():
        dbs.append(srv.Db(f"{url}&application_name={name}"))
        return dbs[-1]
    yield SimpleNamespace(url=f"{url}&application_name={name}", name=name, db=open_db)
    for db in dbs: db.engine.dispose()
    cleanup()


def end_connections(name: str) -> int:
    "What a database restart does to the connections named `name`: the server ends each one. How many it ended."
    admin = create_engine(PG_URL)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:  # each count a fresh look
            q = text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :n")
            ended = c.execute(q, {"n": name}).scalar()
            left = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n")
            deadline = time.monotonic() + 10
            while c.execute(left, {"n": name}).scalar() and time.monotonic() < deadline: time.sleep(0.05)
    finally: admin.dispose()
    return ended


def upload(db, tok, *modules, **kw):
    "Store an upload of `modules` as the token's owner, as the upload route does (the token checked by the caller)."
    return srv.store_upload(db, srv.user_for_token(db.engine, tok), srv.parse_upload(json.dumps(upload_body(modules, **kw)).encode()))


def snapshot_count(db) -> int:
    with db.read() as c: return len(c.execute(select(srv.Snapshot.id)).all())


def test_postgres_connections_the_database_dropped_are_replaced(pg):
    app = srv.create_app(pg.url, public=True)
    client, tok = TestClient(app, raise_server_exceptions=False), srv.add_user(app.state.db.engine, "ada")
    try:
        assert client.post("/api/progress/upload", json=upload_body((1,)), headers=auth(tok)).status_code == 201
        assert client.get("/api/leaderboard").status_code == 200
        assert end_connections(pg.name) >= 1  # every connection of the pool, as a database restart would
        assert client.post("/api/progress/upload", json=upload_body((1, 2)), headers=auth(tok)).status_code == 201
        assert client.get("/api/leaderboard").json()["leaderboard"][0]["modules_completed"] == 2
        assert client.get("/healthz").json()["status"] == "ok"
    finally: app.state.db.engine.dispose()


def test_postgres_store_upload_after_the_database_ended_its_connections(pg):
    "The storing path itself (no app around it): the connections it pooled are ended; it stores, then recognises a re-send."
    db = pg.db()
    tok = srv.add_user(db.engine, "ada")
    assert upload(db, tok, 1)["status"] == "stored"
    end_connections(pg.name)
    assert upload(db, tok, 1, 2)["status"] == "stored"
    end_connections(pg.name)
    assert upload(db, tok, 1, 2)["status"] == "unchanged"
    assert snapshot_count(db) == 2


def test_postgres_a_standing_changed_elsewhere_is_read_again(pg):
    "Two processes (two `Db`s) take turns with one student: each remembers a standing the other has since changed."
    a, b = pg.db(), pg.db()
    tok = srv.add_user(a.engine, "ada")
    assert upload(a, tok, 1)["status"] == "stored"
    assert upload(b, tok, 1, 2)["status"] == "stored"
    third = upload(a, tok, 1, 2, 3)  # `a` last stored the 1-module standing: it must build on `b`'s
    assert (third["status"], third["modules_completed"], third["latest"]) == ("stored", 3, True)
    again = upload(a, tok, 1, 2)  # stored by `b`: the same body, whatever `a` remembered
    assert (again["status"], again["latest"]) == ("unchanged", False)
    with a.read() as c:
        st = c.execute(select(srv.Standing.snapshot_id, srv.Standing.modules_completed, srv.Standing.modules_reached)).one()
        evs = c.execute(select(srv.Event.kind, srv.Event.subject).order_by(srv.Event.id)).all()
    assert (st.snapshot_id, st.modules_completed, st.modules_reached) == (third["snapshot_id"], 3, third["snapshot_id"])
    assert [s for k, s in evs if k == "module_completed"] == ["01", "02", "03"]
    assert_counters_consistent(SimpleNamespace(state=SimpleNamespace(db=a)))


def test_postgres_concurrent_uploads_through_two_processes_store_each_body_once(pg):
    dbs = [pg.db(), pg.db()]
    toks = {n: srv.add_user(dbs[0].engine, n) for n in ("ada", "bob")}
    bodies = [tuple(range(1, k + 1)) for k in range(1, 7)]
    jobs = [(dbs[i % 2], n, m) for i, (n, m) in enumerate((n, m) for n in toks for m in bodies for _ in range(3))]
    random.Random(7).shuffle(jobs)
    with ThreadPoolExecutor(8) as ex:
        out = list(ex.map(lambda j: upload(j[0], toks[j[1]], *j[2], timestamp=f"2025-11-{10 + len(j[2]):02d}T10:00:00"), jobs))
    assert sorted(r["status"] for r in out).count("stored") == 12 and snapshot_count(dbs[0]) == 12
    with dbs[0].read() as c:  # each student's standing is their snapshot stored last
        latest = dict(c.execute(select(srv.Snapshot.user_pk, srv.Snapshot.id).order_by(srv.Snapshot.id)).all())
        standings = {s.user_pk: s for s in c.execute(select(srv.Standing.__table__))}
        mods = dict(c.execute(select(srv.Snapshot.id, srv.Snapshot.modules_completed)).all())
    assert {pk: s.snapshot_id for pk, s in standings.items()} == latest
    assert all(s.modules_completed == mods[s.snapshot_id] for s in standings.values())
    assert_counters_consistent(SimpleNamespace(state=SimpleNamespace(db=dbs[0])))


def test_postgres_an_upload_is_refused_in_order(pg):
    "Token, then rate limit (counted before the body is read, and spent by a refused body), then body, then owner."
    app = srv.create_app(pg.url, rate_limit=(3, 0.001))
    client, tok = TestClient(app, raise_server_exceptions=False), srv.add_user(app.state.db.engine, "ada")
    post = lambda body, token=tok: client.post("/api/progress/upload", content=body, headers=auth(token)).status_code
    try:
        assert post(json.dumps(upload_body((1,))).encode()) == 201
        assert post(b"{nope") == 400  # the token is still spent
        assert post(json.dumps(upload_body((1, 2), user_id="bob")).encode()) == 403
        assert post(json.dumps(upload_body((1, 2))).encode()) == 429  # the bucket is empty: said before the body
        assert post(b"{nope") == 429
        assert post(b"{nope", "tt_forged") == 401
        srv.revoke(app.state.db.engine, "ada")
        assert post(json.dumps(upload_body((1, 2, 3))).encode()) == 401
        assert snapshot_count(app.state.db) == 1
    finally: app.state.db.engine.dispose()
