"""Benchmark: module completions per second through the store (exclusive lock, re-read, temp file + fsync + os.replace +
folder fsync, backups), from 1 process and from 8 processes at once, against upstream TinyTorch's way of writing
(read, modify, write the file in place: no lock, no fsync) — which also shows how many updates that way loses.

Run: `python benchmarks/bench_store.py [--completes N]`. Writes benchmarks/results/store.json.
"""
import argparse, json, os, platform, shutil, statistics, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing
PROCS = 8


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine()}


def fs_type(path: Path) -> str:
    "The file system holding `path` (from /proc/mounts; 'unknown' elsewhere)."
    try: mounts = [l.split() for l in Path("/proc/mounts").read_text().splitlines()]
    except OSError: return "unknown"
    p, best = str(path.resolve()), ("", "unknown")
    for m in mounts:
        if len(m) > 2 and (p == m[1] or p.startswith(m[1].rstrip("/") + "/")) and len(m[1]) >= len(best[0]): best = (m[1], m[2])
    return best[1]


def make_workspace(root: Path, modules: int):
    "A workspace whose curriculum has `modules` modules, so every completion is a new one."
    from tinytorch_progress.doctor import init_workspace
    init_workspace(root)
    mods = [{"number": n, "slug": f"m{n}", "title": f"Module {n}", "tier": "T"} for n in range(1, modules + 1)]
    (root / ".tito" / "curriculum.json").write_text(json.dumps({"name": "Bench", "tiers": ["T"], "modules": mods, "milestones": []}))


WORKER = textwrap.dedent(r'''
    import json, sys, time
    from pathlib import Path
    mode, root, first, n, go, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]), Path(sys.argv[6])
    if mode == "store":
        from tinytorch_progress import tracker
        import tinytorch_progress.schemas
        def complete(m): tracker.complete(root, m, skip_tests=True)
    else:  # upstream TinyTorch's way: read, modify, write in place
        p = Path(root) / "progress.json"
        def complete(m):
            d = json.loads(p.read_text())
            d["completed_modules"].append(f"{m:02d}")
            p.write_text(json.dumps(d, indent=2))
    while not go.exists(): time.sleep(0.001)
    t0 = time.time()
    for m in range(first, first + n):
        for attempt in range(50):  # the in-place way can be caught half-written by a reader: retry like a user would
            try: complete(m); break
            except json.JSONDecodeError: time.sleep(0.001)
    out.write_text(json.dumps([t0, time.time()]))
''')


def concurrent(mode: str, root: Path, total: int, tmp: Path) -> float:
    "Wall seconds for PROCS processes completing `total` distinct modules between them."
    go = tmp / f"go-{mode}"
    per = total // PROCS
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, mode, str(root), str(1 + w * per), str(per), str(go), str(tmp / f"{mode}{w}.json")],
                              stderr=subprocess.PIPE) for w in range(PROCS)]
    time.sleep(0.5 if mode == "store" else 0.2)  # let every worker import before the start signal
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=600)
        if p.returncode != 0: sys.exit(f"{mode} worker failed:\n{err.decode()[-2000:]}")
    spans = [json.loads((tmp / f"{mode}{w}.json").read_text()) for w in range(PROCS)]
    return max(e for _, e in spans) - min(s for s, _ in spans)


def upstream_single(root: Path, n: int) -> list:
    p = root / "progress.json"
    p.write_text(json.dumps({"started_modules": [], "completed_modules": []}))
    times = []
    for m in range(1, n + 1):
        t = time.perf_counter()
        d = json.loads(p.read_text()); d["completed_modules"].append(f"{m:02d}"); p.write_text(json.dumps(d, indent=2))
        times.append(time.perf_counter() - t)
    return times


def fsync_rate(folder: Path, n: int = 50) -> float:
    "Small-file write + fsync per second on this disk: the floor under any durable write."
    f = folder / "fsync-probe"
    t = time.perf_counter()
    with open(f, "wb") as fh:
        for _ in range(n): fh.write(b"x" * 200); fh.flush(); os.fsync(fh.fileno())
    return n / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--completes", type=int, default=200, help="completions per measurement (a multiple of 8)")
    ap.add_argument("--out", default=str(HERE / "results" / "store.json"))
    args = ap.parse_args(argv)
    n = max(PROCS, args.completes // PROCS * PROCS)
    from tinytorch_progress import tracker
    from tinytorch_progress.store import Workspace
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        fst, fs_rate = fs_type(tmp), fsync_rate(tmp)
        # 1 process, through the tracker (each completion is a locked transaction writing 3 files + backups)
        one = tmp / "one"; make_workspace(one, n)
        tracker.complete(one, n, skip_tests=True)  # warm: imports, curriculum
        lat = []
        for m in range(1, n):
            t = time.perf_counter(); tracker.complete(one, m, skip_tests=True); lat.append(time.perf_counter() - t)
        assert len(Workspace(one).read().completed) == n
        # 8 processes at once
        many = tmp / "many"; make_workspace(many, n)
        wall = concurrent("store", many, n, tmp)
        s = Workspace(many).read()
        lost_store = n - len(s.completed)
        # upstream's in-place writes: 1 process, then 8 processes (counting what they lose)
        up1 = tmp / "up1"; up1.mkdir()
        up_lat = upstream_single(up1, n)
        up8 = tmp / "up8"; up8.mkdir()
        (up8 / "progress.json").write_text(json.dumps({"started_modules": [], "completed_modules": []}))
        up_wall = concurrent("upstream", up8, n, tmp)
        try: lost_up, up_broken = n - len(set(json.loads((up8 / "progress.json").read_text())["completed_modules"])), False
        except json.JSONDecodeError: lost_up, up_broken = n, True  # the file itself was left unreadable: everything is gone
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    one_rate = len(lat) / sum(lat)
    many_rate = n / wall
    up_rate, up8_rate = len(up_lat) / sum(up_lat), n / up_wall
    m = machine()
    result = {
        "benchmark": "store",
        "completes_per_s_1_process": round(one_rate, 1), "completes_per_s_8_processes": round(many_rate, 1),
        "median_complete_ms_1_process": round(statistics.median(lat) * 1000, 2),
        "p90_complete_ms_1_process": round(sorted(lat)[int(0.9 * len(lat))] * 1000, 2),
        "lost_updates_8_processes": lost_store,
        "upstream_in_place_completes_per_s_1_process": round(up_rate, 1),
        "upstream_in_place_completes_per_s_8_processes": round(up8_rate, 1),
        "upstream_in_place_lost_updates_8_processes": lost_up, "upstream_in_place_file_left_unreadable": up_broken,
        "cost_of_safety_ratio_1_process": round(up_rate / one_rate, 1),
        "fsyncs_per_s_on_this_disk": round(fs_rate, 1), "file_system": fst,
        "completes": n, "processes": PROCS, "machine": m, "date": time.strftime("%Y-%m-%d"),
        "what_one_complete_does": "lock .tito/.lock, re-read 3 files, write progress.json, .tito/progress.json, "
                                  ".tito/milestones.json via temp file + fsync + os.replace + folder fsync, with backups",
    }
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"store: {one_rate:.0f} completes/s from 1 process, {many_rate:.0f}/s from {PROCS} processes, "
          f"{lost_store} of {n} lost (must be 0)")
    print(f"  one complete: median {statistics.median(lat) * 1000:.1f} ms (locked, fsynced, backed up; "
          f"this disk does {fs_rate:.0f} fsyncs/s, {fst})")
    print(f"  upstream-style in-place writes: {up_rate:.0f}/s from 1 process ({up_rate / one_rate:.0f}x faster, not durable), "
          f"{up8_rate:.0f}/s from {PROCS} processes with {lost_up} of {n} updates lost"
          + (" (progress.json left unreadable)" if up_broken else ""))
    print(f"  machine: {m['cpu_count']} cores, {m['implementation']} {m['python']}, {m['platform']}")
    print(f"  wrote {out}")
    return 0 if lost_store == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
