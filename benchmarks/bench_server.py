"""Benchmark: the progress website at class scale — 100k users seeded — on SQLite and PostgreSQL.

Uploads model a class syncing as it works: each student's uploads in order, one more module every other sync (so
every upload is distinct and stored, and most change a score). Measures, in process (the ASGI app driven directly — middleware, routing, validation, database, rendering — with no
HTTP client or network in the way), the leaderboard's latency (p50/p99 over first pages and
random deep pages, both metrics), the class dashboard's latency, and upload throughput (every upload distinct, so each
one is validated, stored as a snapshot, and updates standings, counters and events) — in process, and again over real
HTTP against `tito serve` in its own process with a minimal keep-alive client. Reads are signed in (a student's
token; an instructor's for /u/NAME). Random pages reach every depth of the 100k (deep pages were the slow case).
Next to uploads/s it prints the CPU seconds per 1,000 uploads: of this process in process (the app plus a thin
client), and of the `tito serve` process (and its workers) over HTTP — the cost per upload, which unlike uploads/s
does not depend on how busy the machine is. Targets: leaderboard p99 < 20 ms on both databases; uploads over HTTP to one
`tito serve` worker on SQLite >= 300/s (a class of 1,000 syncing needs under 5/s; more load is for PostgreSQL and
`--workers`). The load average is printed before and after each database's run: wall-clock figures move with it.

Run: `python benchmarks/bench_server.py [--users 100000] [--queries 400] [--uploads 2000] [--no-pg | --no-sqlite]`. PostgreSQL comes from
$TITO_TEST_PG_URL (default: the test database `.ci/postgres.sh` creates; a scratch schema is used and dropped) and is
skipped with a note if unreachable. Writes benchmarks/results/server.json.
"""
import argparse, asyncio, json, os, platform, random, sys, tempfile, time, uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text

from tinytorch_progress import server as srv

HERE = Path(__file__).resolve().parent
PG_URL = os.environ.get("TITO_TEST_PG_URL", "postgresql+psycopg://tito:tito@127.0.0.1:5432/tito_test")
TARGET_P99_MS, TARGET_HTTP_UPLOADS = 20.0, 300.0


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()) \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), None) \
        if Path("/proc/meminfo").exists() else None
    import sqlite3
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "python": platform.python_version(),
            "platform": platform.platform(), "sqlite": sqlite3.sqlite_version,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def seed(db, n: int, rng: random.Random):
    "n users with standings (scores skewed like a real class), by bulk insert; then the counters, recomputed."
    ut, st = srv.User.__table__, srv.Standing.__table__
    base = datetime(2025, 9, 1)
    reached = list(range(1, n + 1)); rng.shuffle(reached)
    reached2 = list(range(1, n + 1)); rng.shuffle(reached2)
    req = {"01": 1, "02": 2, "03": 7, "04": 9, "05": 13, "06": 17}
    t0 = time.perf_counter()
    B = 5000
    for lo in range(0, n, B):
        users, standings = [], []
        for i in range(lo, min(n, lo + B)):
            name = f"s{i:06d}"
            mods = min(20, max(0, int(rng.triangular(0, 21, 6))))
            unl = [m for m, need in req.items() if mods >= need]
            done = [m for m in unl if rng.random() < 0.6]
            when = base + timedelta(minutes=reached[i])
            users.append({"id": i + 1, "username": name, "user_id": name, "created_at": base})
            standings.append({"user_pk": i + 1, "user_id": name, "username": name, "snapshot_id": None, "exported_at": when,
                              "updated_at": when, "total_modules": 20, "modules_completed": mods, "modules_reached": reached[i],
                              "modules_reached_at": when, "milestones_completed": len(done), "milestones_reached": reached2[i],
                              "milestones_reached_at": when, "completed_modules": ",".join(f"{m:02d}" for m in range(1, mods + 1)),
                              "unlocked_milestones": ",".join(unl), "completed_milestones": ",".join(done)})
        with db.engine.begin() as c:
            c.execute(insert(ut), users); c.execute(insert(st), standings)
    with db.write() as c:
        if db.dialect == "postgresql":
            c.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('users', 'id'), {n})")
        srv.rebuild_counters(c)
    # what autovacuum does after a bulk load (PostgreSQL: statistics and the visibility map for index-only scans)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("VACUUM ANALYZE" if db.dialect == "postgresql" else "ANALYZE")
    return time.perf_counter() - t0


def body(i: int, k: int, hours: float) -> dict:
    "An upload of a student with `k` modules completed (and the milestones those unlock, every other one completed)."
    req = [1, 2, 7, 9, 13, 17]
    ms = [{"id": f"{m:02d}", "name": f"Milestone {m:02d}", "unlocked_at": "2025-11-15T10:00:00", "completed": m % 2 == 1,
           "completed_at": "2025-11-16T10:00:00" if m % 2 == 1 else None} for m in range(1, 7) if k >= req[m - 1]]
    return {"timestamp": (datetime(2025, 11, 1) + timedelta(seconds=i)).isoformat(),
            "module_progress": {"total_modules": 20, "completed_count": k, "completed_modules": list(range(1, k + 1)),
                                "completion_dates": {str(m): f"2025-11-{m:02d}T10:00:00" for m in range(1, k + 1)},
                                "last_worked": f"{max(k, 1):02d}", "last_completed": f"{k:02d}" if k else None,
                                "completion_percentage": k * 5},
            "milestone_progress": {"total_milestones": 6, "unlocked_count": len(ms), "completed_count": sum(m["completed"] for m in ms),
                                   "unlocked_milestones": ms, "locked_milestones": []},
            "statistics": {"total_study_time_hours": hours, "modules_per_day": 0.8, "current_streak_days": 2, "longest_streak_days": 5}}


def class_uploads(n: int, uploaders: int, rng: random.Random, first: int = 0) -> list[tuple[int, dict]]:
    "Uploads number `first`.. of a class syncing as it works: each student's in order, a module more every other sync."
    start = [rng.randint(0, 10) for _ in range(uploaders)]
    return [(i % uploaders, body(i, min(20, start[i % uploaders] + (i // uploaders) // 2), 1.0 + i // uploaders))
            for i in range(first, first + n)]


class Asgi:
    "A minimal in-process ASGI client: the app's full stack (middleware, routing, validation, database, JSON/HTML"
    " rendering) without an HTTP client's own overhead in the same process. Returns (status, body bytes)."
    def __init__(self, app, token=None): self.app, self.token = app, token

    async def request(self, method: str, path: str, headers: dict = None, body: bytes = b""):
        p, _, q = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
                 "path": p, "raw_path": p.encode(), "query_string": q.encode(), "root_path": "",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "bench", **(headers or {}),
                             "content-length": str(len(body))}.items()],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        sent, out = False, {"status": None, "body": []}
        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
        async def send(msg):
            if msg["type"] == "http.response.start": out["status"] = msg["status"]
            elif msg["type"] == "http.response.body": out["body"].append(msg.get("body", b""))
        await self.app(scope, receive, send)
        return out["status"], b"".join(out["body"])

    async def get(self, path, token=None):
        "GET `path`, signed in with `token` (the pages and the leaderboard are for the class, not the world)."
        return await self.request("GET", path, {"Authorization": f"Bearer {token or self.token}"} if (token or self.token) else None)


async def http_uploads(base: str, payloads, connections: int) -> float:
    "Uploads per second against a real server, from a minimal keep-alive HTTP/1.1 client (cheap, so the server's"
    " cost is what is measured). Every reply must be 201."
    host, port = base.split("//")[1].split(":")
    queue = list(reversed(payloads))
    async def worker():
        r, w = await asyncio.open_connection(host, int(port))
        while queue:
            tok, data = queue.pop()
            w.write(b"POST /api/progress/upload HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                    b"Authorization: Bearer " + tok.encode() + b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
            head = await r.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
            reply = await r.readexactly(length)
            assert status == 201, reply
        w.close()
    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(payloads) / (time.perf_counter() - t)


def process_tree(pid: int) -> list:
    "A process and its children (from /proc; OSError where /proc is missing)."
    return [pid] + [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]


def peak_rss_mb(pid: int):
    "Peak resident memory (VmHWM) of a process and its children, in MB; None where /proc is missing."
    total = 0
    try:
        for p in process_tree(pid):
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmHWM:"): total += int(line.split()[1])
    except OSError: return None
    return round(total / 1024, 1)


def cpu_seconds(pid: int):
    "User + system CPU seconds of a process and its children so far (from /proc); None where /proc is missing."
    total = 0
    try:
        for p in process_tree(pid):
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)
    except OSError: return None
    return total / os.sysconf("SC_CLK_TCK")


def serve(url: str, workers: int):
    "`tito serve` on a free port in a subprocess; (base URL, process)."
    import socket, subprocess
    with socket.socket() as s_:
        s_.bind(("127.0.0.1", 0)); port = s_.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tinytorch_progress.cli.main", "serve", "--db", url, "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    import urllib.request
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1); break
        except OSError: time.sleep(0.1)
    else: proc.kill(); raise RuntimeError("tito serve did not start")
    if workers > 1: time.sleep(1.5)  # let every worker finish starting
    return f"http://127.0.0.1:{port}", proc


async def run_backend(url: str, args, rng: random.Random) -> dict:
    app = srv.create_app(url)
    db = app.state.db
    out = {"database": db.dialect, "users": args.users,
           "load_average_before": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    out["seed_s"] = round(seed(db, args.users, rng), 2)
    print(f"  seeded {args.users} users in {out['seed_s']} s", flush=True)
    tokens = [srv.add_user(db.engine, f"up{j:05d}") for j in range(args.uploaders)]
    # a student reads the leaderboard and the overview (the costlier path: chosen names); an instructor reads /u/NAME
    c = Asgi(app, srv.add_user(db.engine, "reader", role="student"))
    staff = srv.add_user(db.engine, "staff", role="instructor")
    if True:
        # warm up (connections, caches)
        for _ in range(20): assert (await c.get("/api/leaderboard"))[0] == 200
        # leaderboard: first pages and random deeper pages, both metrics
        lat = {"first_page": [], "random_page": []}
        fn_lat = []
        for q in range(args.queries):
            metric = srv.METRICS[q % 2]
            kind = "first_page" if q % 3 else "random_page"
            offset = 0 if kind == "first_page" else rng.randrange(0, args.users, 50)
            t = time.perf_counter()
            status, data = await c.get(f"/api/leaderboard?metric={metric}&limit=50&offset={offset}")
            lat[kind].append((time.perf_counter() - t) * 1000)
            assert status == 200 and len(json.loads(data)["leaderboard"]) == 50, data
            t = time.perf_counter(); srv.leaderboard(db, metric, 50, offset); fn_lat.append((time.perf_counter() - t) * 1000)
        allq = lat["first_page"] + lat["random_page"]
        out["leaderboard_ms"] = {k: {"p50": round(pct(v, 50), 2), "p99": round(pct(v, 99), 2), "n": len(v)}
                                 for k, v in {**lat, "all": allq}.items()}
        out["leaderboard_query_only_ms"] = {"p50": round(pct(fn_lat, 50), 2), "p99": round(pct(fn_lat, 99), 2)}
        # the class dashboard page (aggregates over every student)
        dash = []
        for _ in range(args.pages):
            t = time.perf_counter(); status, _ = await c.get("/"); dash.append((time.perf_counter() - t) * 1000)
            assert status == 200
        out["dashboard_ms"] = {"p50": round(pct(dash, 50), 2), "p99": round(pct(dash, 99), 2), "n": len(dash)}
        # uploads: distinct bodies, spread over the uploader tokens, sequential and with N in flight
        payloads = [(tokens[u], json.dumps(b).encode()) for u, b in class_uploads(2 * args.uploads, len(tokens), rng)]
        async def send(tok, data):
            status, reply = await c.request("POST", "/api/progress/upload", {"Authorization": f"Bearer {tok}",
                                                                               "content-type": "application/json"}, data)
            assert status == 201, reply
        seq = payloads[: args.uploads // 4]
        t = time.perf_counter()
        for tok, data in seq: await send(tok, data)
        out["uploads_per_s_sequential"] = round(len(seq) / (time.perf_counter() - t), 1)
        conc = payloads[args.uploads: 2 * args.uploads]
        sem = asyncio.Semaphore(args.concurrency)
        async def limited(tok, data):
            async with sem: await send(tok, data)
        t, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(limited(tok, data) for tok, data in conc))
        out["uploads_per_s"] = round(len(conc) / (time.perf_counter() - t), 1)
        # this process is the server here (plus a thin ASGI client); the database server's own CPU is not counted
        out["cpu_s_per_1000_uploads"] = round((time.process_time() - cpu) / len(conc) * 1000, 3)
        out["upload_concurrency"] = args.concurrency
        userp = []
        for _ in range(args.pages):
            t = time.perf_counter(); status, page = await c.get(f"/u/up{rng.randrange(args.uploaders):05d}", staff)
            userp.append((time.perf_counter() - t) * 1000)
            assert status == 200 and b'id="modules"' in page
        out["user_page_ms"] = {"p50": round(pct(userp, 50), 2), "p99": round(pct(userp, 99), 2), "n": len(userp)}
        # the same over real HTTP: `tito serve` in its own process(es), a minimal client in this one
        if args.http:
            import signal
            workers = 1 if db.dialect == "sqlite" else args.workers
            more = [(tokens[u], json.dumps(b).encode()) for u, b in class_uploads(args.uploads, len(tokens), rng, 2 * args.uploads)]
            base, proc = serve(url, workers)
            try:
                cpu0 = cpu_seconds(proc.pid)
                out["http_uploads_per_s"] = round(await http_uploads(base, more, args.concurrency), 1)
                cpu1 = cpu_seconds(proc.pid)
                if cpu0 is not None and cpu1 is not None:
                    out["http_server_cpu_s_per_1000_uploads"] = round((cpu1 - cpu0) / len(more) * 1000, 3)
                out["http_server_peak_rss_mb"] = peak_rss_mb(proc.pid)
            finally:
                os.killpg(proc.pid, signal.SIGINT); proc.wait(30)
            out["http_workers"] = workers
        # leaderboard while it is being written to is still correct and answered
        status, data = await c.get("/api/leaderboard?limit=5")
        out["leaderboard_top5_after"] = [(e["username"], e["modules_completed"], e["rank"]) for e in json.loads(data)["leaderboard"]]
    db.engine.dispose()
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    out["meets_targets"] = {"leaderboard_p99_lt_20ms": out["leaderboard_ms"]["all"]["p99"] < TARGET_P99_MS}
    if db.dialect == "sqlite" and "http_uploads_per_s" in out:
        out["meets_targets"]["http_uploads_ge_300_per_s"] = out["http_uploads_per_s"] >= TARGET_HTTP_UPLOADS
    return out


def pg_scratch():
    "A URL into a fresh schema of the test database, and its cleanup; (None, reason) if unreachable."
    try:
        admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with admin.connect() as c: version = c.execute(text("SHOW server_version")).scalar()
    except Exception as e:
        return None, f"PostgreSQL not reachable: {str(e).splitlines()[0][:120]}", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as c: c.execute(text(f'CREATE SCHEMA "{schema}"'))
    def drop():
        with admin.begin() as c: c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}", version, drop


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=600)
    p.add_argument("--pages", type=int, default=30)
    p.add_argument("--uploads", type=int, default=2000)
    p.add_argument("--uploaders", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--no-pg", action="store_true")
    p.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    p.add_argument("--no-http", dest="http", action="store_false", help="skip the real-HTTP upload measurement")
    p.add_argument("--workers", type=int, default=1,
                   help="`tito serve --workers` for PostgreSQL over HTTP (default 1: on 2 cores more processes only contend)")
    p.add_argument("--out", default=str(HERE / "results" / "server.json"))
    args = p.parse_args(argv)
    rng = random.Random(8)
    res = {"benchmark": "server", "machine": machine(), "targets": {"leaderboard_p99_ms": TARGET_P99_MS,
                                                                    "http_uploads_per_s_sqlite_one_worker": TARGET_HTTP_UPLOADS},
           "backends": {}, "notes": []}
    print(f"machine: {res['machine']['cpu']}, {res['machine']['cores']} cores, {res['machine']['memory_mb']} MB, "
          f"Python {res['machine']['python']}, SQLite {res['machine']['sqlite']}; load average {res['machine']['load_average_at_start']}")
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as d:
            print("SQLite (WAL, file):", flush=True)
            res["backends"]["sqlite"] = asyncio.run(run_backend(f"sqlite:///{d}/bench.db", args, rng))
    if not args.no_pg:
        url, version, drop = pg_scratch()
        if url is None: res["notes"].append(version); print(version)
        else:
            print(f"PostgreSQL {version}:", flush=True)
            try:
                res["backends"]["postgresql"] = asyncio.run(run_backend(url, args, rng))
                res["backends"]["postgresql"]["server_version"] = version
            finally: drop()
    for name, b in res["backends"].items():
        lb = b["leaderboard_ms"]
        print(f"{name:10} leaderboard p50 {lb['all']['p50']:.2f} ms, p99 {lb['all']['p99']:.2f} ms "
              f"(first page p99 {lb['first_page']['p99']:.2f}, random page p99 {lb['random_page']['p99']:.2f}; "
              f"{b['users']} users) → target p99 < {TARGET_P99_MS:.0f} ms: {'met' if b['meets_targets']['leaderboard_p99_lt_20ms'] else 'MISSED'} "
              f"({TARGET_P99_MS / lb['all']['p99']:.1f}x headroom)")
        print(f"{'':10} uploads in process {b['uploads_per_s']:.0f}/s with {b['upload_concurrency']} in flight "
              f"({b['uploads_per_s_sequential']:.0f}/s one at a time; {b['cpu_s_per_1000_uploads']:.2f} CPU s per 1,000 uploads)")
        if "http_uploads_per_s" in b:
            verdict = b["meets_targets"].get("http_uploads_ge_300_per_s")
            target = "" if verdict is None else (f" → target ≥ {TARGET_HTTP_UPLOADS:.0f}/s: {'met' if verdict else 'MISSED'} "
                                                 f"({b['http_uploads_per_s'] / TARGET_HTTP_UPLOADS:.2f}x)")
            print(f"{'':10} over HTTP (`tito serve --workers {b['http_workers']}`, {b['upload_concurrency']} connections): "
                  f"{b['http_uploads_per_s']:.0f} uploads/s, server CPU {b.get('http_server_cpu_s_per_1000_uploads')} s per 1,000 uploads; "
                  f"server peak RSS under that load {b.get('http_server_peak_rss_mb')} MB{target}")
        print(f"{'':10} dashboard / p50 {b['dashboard_ms']['p50']:.1f} ms p99 {b['dashboard_ms']['p99']:.1f} ms; "
              f"/u/NAME p50 {b['user_page_ms']['p50']:.1f} ms; seeding {b['seed_s']} s; "
              f"load average {b['load_average_before']} before, {b['load_average_after']} after")
    if {"sqlite", "postgresql"} <= set(res["backends"]):
        s, g = res["backends"]["sqlite"], res["backends"]["postgresql"]
        res["ratios_postgresql_over_sqlite"] = {
            "leaderboard_p99": round(g["leaderboard_ms"]["all"]["p99"] / s["leaderboard_ms"]["all"]["p99"], 2),
            "uploads_per_s": round(g["uploads_per_s"] / s["uploads_per_s"], 2)}
        print(f"PostgreSQL/SQLite: leaderboard p99 x{res['ratios_postgresql_over_sqlite']['leaderboard_p99']}, "
              f"uploads/s x{res['ratios_postgresql_over_sqlite']['uploads_per_s']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out}")
    ok = all(all(b["meets_targets"].values()) for b in res["backends"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
