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
from test_server_e2e import free_port

BURST, RATE = 30, 1.0  # `tito serve`'s limit per token: 30 at once, then 1 a second


def serve(url, tmp_path, name):
    "`tito serve --db url` on a free port in a process of its own; (base URL, process)."
    port = free_port()
    log = open(tmp_path / f"{name}.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "tinytorch_progress.cli", "serve", "--db", url, "--port", str(port),
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
    stored = [r.json()["snapshot_id"] for r in replies if r.status_code == 201]
    assert snapshots(db, "ada") == sorted(stored) and len(set(stored)) == len(stored)  # nothing lost, nothing twice


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
