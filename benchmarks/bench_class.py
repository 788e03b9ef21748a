"""Benchmark: the instructor's class view and gradebook at course scale — 2,000 students × 20 modules — on SQLite and
PostgreSQL, with the leaderboard measured in the same run for comparison.

Seeds students through the real upload path (one snapshot each, varied progress, completion dates, milestones), then
measures in process (the ASGI app driven directly: routing, sign-in check, queries, rendering; no network) the server
time of `/class` pages of 100 rows (first and deeper pages, every sort, a name filter), `/api/leaderboard?limit=100`,
the whole-class summary's recomputation (stuck, quiet, per-module; cached between uploads), and the CSV gradebook:
its time and the peak Python memory while streaming it at 500, 1,000 and 2,000 students (flat = streamed).
Target: `/class` p95 < 200 ms.

Run: `python benchmarks/bench_class.py [--students 2000] [--requests 60] [--no-pg]`. PostgreSQL from $TITO_TEST_PG_URL
(default: the database `.ci/postgres.sh` creates; a scratch schema, dropped after). Writes benchmarks/results/class.json.
"""
import argparse, asyncio, json, os, random, sys, tempfile, time, tracemalloc, uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import machine, pct, pg_scratch  # noqa: E402

from tinytorch_progress import server as srv  # noqa: E402
from tinytorch_progress.server import classview  # noqa: E402

HERE = Path(__file__).resolve().parent
TARGET_P95_MS = 200.0


def body(rng: random.Random, i: int) -> bytes:
    "A consistent upload: some modules completed with dates, the next one worked on, milestones by module count."
    n = min(20, max(0, int(rng.triangular(0, 21, 6))))
    mods = list(range(1, n + 1))
    need = {"01": 1, "02": 2, "03": 7, "04": 9, "05": 13, "06": 17}
    unl = [m for m, k in need.items() if n >= k]
    ms = [{"id": m, "name": f"Milestone {m}", "unlocked_at": "2025-10-01T10:00:00", "completed": j % 2 == 0,
           "completed_at": "2025-10-02T10:00:00" if j % 2 == 0 else None} for j, m in enumerate(unl)]
    day = lambda m: f"2025-09-{1 + m:02d}T{10 + i % 10}:00:00"
    return json.dumps({
        "module_progress": {"total_modules": 20, "completed_count": n, "completed_modules": mods, "completion_percentage": n * 5,
                            "completion_dates": {str(m): day(m) for m in mods}, "last_worked": f"{min(n + 1, 20):02d}"},
        "milestone_progress": {"total_milestones": 6, "unlocked_count": len(ms), "completed_count": sum(m["completed"] for m in ms),
                               "unlocked_milestones": ms, "locked_milestones": [{"id": m, "name": m} for m in need if m not in unl]},
        "statistics": {"total_study_time_hours": round(rng.random() * 40, 1), "current_streak_days": i % 9, "longest_streak_days": 9}}).encode()


def seed(app, start: int, stop: int, rng: random.Random):
    db, eng = app.state.db, app.state.db.engine
    for i in range(start, stop):
        tok = srv.add_user(eng, f"s{i:05d}")
        srv.store_upload(db, srv.user_for_token(eng, tok), srv.parse_upload(body(rng, i)))


def csv_cost(app) -> dict:
    "Time, bytes and peak Python memory of streaming the whole gradebook (consumed piece by piece, like a response)."
    db = app.state.db
    n, ms = classview.module_count(db), ["01", "02", "03", "04", "05", "06"]
    tracemalloc.start()
    t, size = time.perf_counter(), 0
    for piece in classview.gradebook_csv(db, n, ms): size += len(piece.encode())
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory(); tracemalloc.stop()
    return {"ms": round(dt * 1000, 1), "bytes": size, "peak_python_kb": round(peak / 1024)}


async def timed(client, url, headers) -> tuple[float, int, int]:
    t = time.perf_counter()
    r = await client.get(url, headers=headers)
    return (time.perf_counter() - t) * 1000, r.status_code, len(r.content)


async def measure(app, prof: str, requests: int, students: int, rng: random.Random) -> dict:
    import httpx
    h = {"Authorization": f"Bearer {prof}"}
    out = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c:
        cold = await timed(c, "/class", h)
        assert cold[1] == 200, cold
        out["class_first_request_ms"] = round(cold[0], 1)  # includes computing the whole-class summary once
        for _ in range(5): await timed(c, "/class", h); await timed(c, "/api/leaderboard?limit=100", h)  # warm up
        sorts = ["name", "-modules", "modules", "-milestones", "-activity", "activity"]
        lat, lb = [], []
        for k in range(requests):
            off = rng.randrange(0, max(1, students // 100)) * 100
            url = f"/class?sort={sorts[k % len(sorts)]}&offset={off}" + ("&name=s01" if k % 10 == 9 else "")
            ms, status, size = await timed(c, url, h)
            assert status == 200 and size > 1000, (url, status)
            lat.append(ms)
            ms, status, _ = await timed(c, f"/api/leaderboard?limit=100&offset={off}", h)
            assert status == 200
            lb.append(ms)
        out["class_page_ms"] = {"p50": round(pct(lat, 50), 1), "p95": round(pct(lat, 95), 1), "max": round(max(lat), 1), "n": len(lat)}
        out["leaderboard_100_ms"] = {"p50": round(pct(lb, 50), 1), "p95": round(pct(lb, 95), 1), "n": len(lb)}
        ms, status, size = await timed(c, "/api/class.csv", h)
        assert status == 200
        out["csv_over_asgi"] = {"ms": round(ms, 1), "bytes": size}
    t = time.perf_counter()
    classview.summarize(classview.iter_students(app.state.db), 20)
    out["summary_recompute_ms"] = round((time.perf_counter() - t) * 1000, 1)
    out["ratio_class_p95_over_leaderboard_p95"] = round(out["class_page_ms"]["p95"] / out["leaderboard_100_ms"]["p95"], 1)
    out["meets_target"] = out["class_page_ms"]["p95"] < TARGET_P95_MS
    return out


def run_backend(url: str, args) -> dict:
    rng = random.Random(15)
    app = srv.create_app(url, rate_limit=None)
    prof = srv.add_user(app.state.db.engine, "prof", role="instructor")
    out, done, csv = {}, 0, {}
    t = time.perf_counter()
    for n in sorted({args.students // 4, args.students // 2, args.students}):
        seed(app, done, n, rng); done = n
        csv[n] = csv_cost(app)
    out["seed_s"] = round(time.perf_counter() - t, 1)
    out["students"] = done
    out["csv_stream_by_students"] = csv
    out |= asyncio.run(measure(app, prof, args.requests, done, rng))
    app.state.db.engine.dispose()
    return out


def report(name: str, b: dict):
    c, l = b["class_page_ms"], b["leaderboard_100_ms"]
    print(f"{name:10} /class (100 rows) p50 {c['p50']} ms, p95 {c['p95']} ms (target < {TARGET_P95_MS:.0f}: "
          f"{'met' if b['meets_target'] else 'MISSED'}); /api/leaderboard?limit=100 p50 {l['p50']} ms, p95 {l['p95']} ms; "
          f"ratio p95 x{b['ratio_class_p95_over_leaderboard_p95']}")
    print(f"{'':10} first /class {b['class_first_request_ms']} ms (summary computed); summary recompute {b['summary_recompute_ms']} ms; "
          f"CSV over ASGI {b['csv_over_asgi']['ms']} ms, {b['csv_over_asgi']['bytes']} bytes")
    print(f"{'':10} CSV streamed, peak Python memory by students: " +
          ", ".join(f"{n}: {v['peak_python_kb']} kB ({v['ms']} ms)" for n, v in b["csv_stream_by_students"].items()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=2000)
    p.add_argument("--requests", type=int, default=60)
    p.add_argument("--no-pg", action="store_true")
    p.add_argument("--out", default=str(HERE / "results" / "class.json"))
    args = p.parse_args(argv)
    res = {"benchmark": "class", "machine": machine(), "target_class_p95_ms": TARGET_P95_MS, "backends": {}, "notes": []}
    with tempfile.TemporaryDirectory() as d:
        res["backends"]["sqlite"] = b = run_backend(f"sqlite:///{d}/class.db", args)
        report("SQLite", b)
    if not args.no_pg:
        url, version, drop = pg_scratch()
        if url is None: res["notes"].append(version); print(version)
        else:
            try:
                res["backends"]["postgresql"] = b = run_backend(url, args)
                b["server_version"] = version
                report("PostgreSQL", b)
            finally: drop()
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(b["meets_target"] for b in res["backends"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
