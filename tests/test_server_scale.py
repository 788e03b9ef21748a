"""Two `tito serve` processes on one PostgreSQL database, as a course runs them behind a proxy: one client driving both
alternately gets what one process allows (the rate limit lives in the database), no upload is lost or stored twice
across them, and both serve the same leaderboard."""
import json, os, signal, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from tinytorch_progress import server as srv
from test_server import fresh_db, upload_body
from conftest import free_port

pytestmark = pytest.mark.slow  # two `tito serve` processes; thousands of students

BURST, RATE = 30, 1.0  # `tito serve`'s limit per token: 30 at once, then 1 a second


def serve(url, tmp_path, name):
    "`tito serve --db url` on a free port in a process of its own; (base URL, process)."
    port = free_port()
    log = open(tmp_path / f"{name}.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "tinytorch_progress.cli.main", "serve", "--db", url, "--port", str(port),
                             "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200: return base, proc, log
        except httpx.TransportError: pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0); proc.kill()
            pytest.fail(f"tito serve did not start: {log.read()}")
        time.sleep(0.1)


@pytest.fixture
def two_servers(tmp_path):
    "Two `tito serve` processes on one fresh PostgreSQL schema; (their base URLs, a `Db` on the same database)."
    url, cleanup = fresh_db("postgresql", tmp_path)
    db = srv.Db(url)  # migrates first, so the servers start on the same schema
    started = [serve(url, tmp_path, n) for n in ("a", "b")]
    yield [b for b, _, _ in started], db
    for _, proc, log in started:
        proc.send_signal(signal.SIGINT)
        try: proc.wait(15)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        log.close()
    db.engine.dispose()
    cleanup()


def body(i: int) -> dict:
    "A distinct, consistent upload (one more hour of study each time)."
    b = upload_body()
    b["statistics"] = {**b.get("statistics", {}), "total_study_time_hours": 1.0 + i}
    return b


def snapshots(db, username) -> list[int]:
    ut, snap = srv.User.__table__, srv.Snapshot.__table__
    with db.read() as c:
        return [r[0] for r in c.execute(select(snap.c.id).join(ut, ut.c.id == snap.c.user_pk)
                                         .where(ut.c.username == username).order_by(snap.c.id))]


def test_two_processes_on_postgres_share_the_rate_limit(two_servers):
    (a, b), db = two_servers
    tok = srv.add_user(db.engine, "ada")
    t0 = time.monotonic()
    with httpx.Client(headers={"Authorization": f"Bearer {tok}"}, timeout=30) as http:
        replies = [http.post(f"{(a, b)[i % 2]}/api/progress/upload", json=body(i)) for i in range(2 * BURST + 20)]
    elapsed = time.monotonic() - t0
    codes = [r.status_code for r in replies]
    assert set(codes) <= {201, 429}, codes
    allowed, one_process = codes.count(201), BURST + RATE * elapsed
    assert 0.8 * one_process <= allowed <= 1.2 * one_process, (allowed, one_process, codes)  # two processes, one limit
    assert codes[:BURST] == [201] * BURST and {codes[i % 2::2].count(429) > 0 for i in (0, 1)} == {True}  # both refuse
    refused = next(r for r in replies if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1 and "too many uploads" in refused.json()["detail"]
    stored = sorted(r.json()["snapshot_id"] for r in replies if r.status_code == 201)
    assert len(set(stored)) == len(stored)  # nothing twice
    kept = stored[:1] + stored[1:][-srv.KEEP_LATEST:]  # the history kept: the day's first snapshot and the latest ones
    assert snapshots(db, "ada") == kept  # nothing lost that the history keeps


def test_two_processes_on_postgres_lose_and_duplicate_nothing(two_servers):
    (a, b), db = two_servers
    toks = {n: srv.add_user(db.engine, n) for n in ("bea", "cy", "dan")}
    post = lambda base, name, data: httpx.post(f"{base}/api/progress/upload", json=data, timeout=30,
                                               headers={"Authorization": f"Bearer {toks[name]}"})
    # alternating uploads of one student: every one stored once, the last one is the latest
    ids = [post((a, b)[i % 2], "bea", body(i)).json()["snapshot_id"] for i in range(12)]
    assert snapshots(db, "bea") == ids
    assert srv.latest_export(db, "bea")["statistics"]["total_study_time_hours"] == 12.0
    # the same body to both at once (a retry racing the original): stored once, both answers name that snapshot
    same = body(99)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: post((a, b)[i % 2], "cy", same), range(8)))
    assert sorted(r.status_code for r in replies) == [200] * 7 + [201]
    assert {r.json()["snapshot_id"] for r in replies} == set(snapshots(db, "cy")) and len(snapshots(db, "cy")) == 1
    # students uploading to both at once: counters and standings agree with a recount
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: post((a, b)[i % 2], ("dan", "bea")[i % 2], body(200 + i)), range(16)))
    with db.read() as c:
        kept = sorted(tuple(r) for r in c.execute(select(srv.Counter.__table__)) if r.students)
        n_snap = c.execute(select(func.count()).select_from(srv.Snapshot.__table__)).scalar()
    with db.write() as c: srv.rebuild_counters(c)
    with db.read() as c:
        assert kept == sorted(tuple(r) for r in c.execute(select(srv.Counter.__table__)) if r.students)
    assert n_snap == 12 + 1 + 16


def test_two_processes_on_postgres_serve_one_leaderboard(two_servers):
    (a, b), db = two_servers
    staff = srv.add_user(db.engine, "staff", role="instructor")
    for i, name in enumerate(["eve", "fay", "gus", "hal"]):
        tok = srv.add_user(db.engine, name)
        for k in range(i + 1):
            b_ = upload_body()
            b_["statistics"] = {"total_study_time_hours": 1.0 + k}
            r = httpx.post(f"{(a, b)[k % 2]}/api/progress/upload", json=b_, headers={"Authorization": f"Bearer {tok}"}, timeout=30)
            assert r.status_code == 201, r.text
    auth = {"Authorization": f"Bearer {staff}"}
    for metric in srv.METRICS:
        for offset in (0, 2):
            q = f"/api/leaderboard?metric={metric}&limit=3&offset={offset}"
            got = [httpx.get(base + q, headers=auth, timeout=30).json() for base in (a, b)]
            assert got[0] == got[1] and got[0]["leaderboard"], got
    assert json.dumps(srv.leaderboard(db).to_json()) == json.dumps(httpx.get(f"{a}/api/leaderboard", headers=auth).json())


# ---- the leaderboard across many rank blocks ------------------------------------------------------------------------

from datetime import datetime
import random

from sqlalchemy import insert

from test_server import db_url  # noqa: F401  (the fixture: SQLite and PostgreSQL)


def brute_force(rows, metric):
    "(username, rank) in leaderboard order, ranking the standings by hand."
    i = ("modules_completed", "milestones_completed").index(metric)
    order = sorted(rows, key=lambda r: (-r[1 + i], r[3 + i], r[0]))
    return [(r[0], 1 + sum(o[1 + i] > r[1 + i] for o in rows)) for r in order]


def test_leaderboard_pages_across_many_rank_blocks(db_url):
    "3,000 students whose 'reached first' positions spread over ~20 rank blocks: any page, any size, both metrics,"
    " equals a brute-force ranking — before and after uploads move students between scores and blocks."
    db, rng, when = srv.Db(db_url), random.Random(20), datetime(2025, 9, 1)
    n = 3000
    reached = rng.sample(range(1, 20 * srv.RANK_BLOCK), 2 * n)
    rows = [(f"s{i:04d}", rng.randint(0, 4), rng.randint(0, 2), reached[i], reached[n + i]) for i in range(n)]
    with db.engine.begin() as c:
        c.execute(insert(srv.User.__table__), [{"id": i + 1, "username": r[0], "user_id": r[0], "created_at": when}
                                               for i, r in enumerate(rows)])
        c.execute(insert(srv.Standing.__table__), [
            {"user_pk": i + 1, "user_id": r[0], "username": r[0], "snapshot_id": None, "exported_at": when, "updated_at": when,
             "total_modules": 20, "modules_completed": r[1], "modules_reached": r[3], "modules_reached_at": when,
             "milestones_completed": r[2], "milestones_reached": r[4], "milestones_reached_at": when,
             "completed_modules": ",".join(f"{m:02d}" for m in range(1, r[1] + 1)), "unlocked_milestones": "",
             "completed_milestones": ""} for i, r in enumerate(rows)])
    with db.write() as c:
        if db.dialect == "postgresql": c.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('users', 'id'), {n})")
        srv.rebuild_counters(c)

    def check():
        from tinytorch_progress.server.ranking import _block_of
        with db.read() as c:  # the pages below come from the blocks, not from the OFFSET fallback
            for metric in srv.METRICS:
                for score, size in srv.histogram(c, metric):
                    assert _block_of(c, metric, score, size - 1, size) is not None, (metric, score)
        for metric in srv.METRICS:
            expect = brute_force(rows, metric)
            offsets = sorted({0, 1, n - 1, n, n + 5, *rng.sample(range(n), 25)})
            for limit in (1, 50, 500):
                for off in offsets:
                    got = [(e.username, e.rank) for e in srv.leaderboard(db, metric, limit, off).leaderboard]
                    assert got == expect[off: off + limit], (metric, limit, off)

    check()
    # uploads move 60 students: new scores, reached at their new snapshot (block 0), counters and blocks kept by ingest
    import json as _json
    from test_server import upload_body as _upload_body
    for step, i in enumerate(rng.sample(range(n), 60)):
        mods = rng.randint(0, 4)
        body = _upload_body(tuple(range(1, mods + 1)), (("01", True),) if mods else (), statistics={"total_study_time_hours": step})
        out = srv.store_upload(db, {"pk": i + 1, "username": rows[i][0], "user_id": rows[i][0]}, srv.parse_upload(_json.dumps(body).encode()))
        old = rows[i]
        rows[i] = (old[0], mods, out["milestones_completed"], out["snapshot_id"] if mods != old[1] else old[3],
                   out["snapshot_id"] if out["milestones_completed"] != old[2] else old[4])
    check()
    with db.read() as c: kept = sorted(tuple(r) for r in c.execute(select(srv.Counter.__table__)) if r.students)
    with db.write() as c: srv.rebuild_counters(c)
    with db.read() as c: assert kept == sorted(tuple(r) for r in c.execute(select(srv.Counter.__table__)) if r.students)
    db.engine.dispose()
