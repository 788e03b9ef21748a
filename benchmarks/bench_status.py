"""Benchmark: `tito status` from an installed wheel against `python -c pass`, `%tito status` in a warm IPython shell,
peak memory, and (when TINYTORCH_CHECKOUT names a real TinyTorch checkout) upstream's `tito module status`.

Run: `python benchmarks/bench_status.py [--runs N] [--no-wheel]`. Builds this checkout's wheel, installs it (no
dependencies, offline) into a fresh temporary venv that sees this environment's packages, and times that venv's `tito
status` against that venv's `python -c pass`, interleaved; then the same from the checkout. Prints ratios first, then
absolute medians and the machine, and writes benchmarks/results/status.json. Targets: wheel `tito status` <= 5x
`python -c pass`; `%tito status` < 20 ms.
"""
import argparse, contextlib, io, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing
TARGET_RATIO, TARGET_CHECKOUT_RATIO, TARGET_MAGIC_MS = 5.0, 6.0, 20.0
SOURCES = ("tinytorch_progress", "setup.py", "settings.ini", "pyproject.toml", "README.md", "MANIFEST.in", "LICENSE")


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor() or None}


def machine_line(m: dict) -> str:
    return f"machine: {m['cpu_count']} cores, {m['implementation']} {m['python']}, {m['platform']}"


def make_workspace(root: Path):
    "The default 20-module course, module folders present, 9 modules completed, one started, 2 milestones done."
    from tinytorch_progress import tracker
    from tinytorch_progress.curriculum import load_curriculum
    from tinytorch_progress.doctor import init_workspace
    init_workspace(root)
    cur = load_curriculum(root)
    for m in cur.modules:
        d = root / "modules" / m.name
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{m.name}.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    for n in range(1, 10): tracker.complete(root, n, skip_tests=True)
    tracker.start(root, 10)
    for ms in ("01", "02"): tracker.complete_milestone(root, ms)
    assert len(cur.modules) == 20


def tito_command() -> list:
    "The installed `tito` console script next to this Python, else `python -m tinytorch_progress.cli.main`."
    script = Path(sys.executable).parent / "tito"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tinytorch_progress.cli.main"]


def wheel_install(tmp: Path) -> tuple[list, list]:
    """Build this checkout's wheel and install it into a fresh venv; that venv's (`tito`, `python`) commands.

    The venv gets the runtime dependencies from this environment through a `.pth` file of plain path lines: path lines
    only extend `sys.path` (nested `.pth` files are not run), so this environment's editable install stays out and the
    wheel's copy, in the venv's own site-packages, is the one imported. Nothing is downloaded."""
    src, dist, env_dir = tmp / "src", tmp / "dist", tmp / "venv"
    src.mkdir()
    for name in SOURCES:  # a copy: building writes build/ and *.egg-info next to the sources
        p = HERE.parent / name
        if p.is_dir(): shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif p.exists(): shutil.copy2(p, src / name)
    quiet = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(src)], **quiet)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], **quiet)
        py = env_dir / "bin" / "python"
        site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
        import sysconfig
        ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
        (Path(site) / "zz_runtime_deps.pth").write_text("".join(f"{p}\n" for p in ours))
        wheel = next(dist.glob("*.whl"))
        subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)], **quiet)
    except subprocess.CalledProcessError as e:
        sys.exit(f"benchmark: cannot install the wheel: {' '.join(map(str, e.cmd))}\n{(e.stderr or b'').decode()[-2000:]}")
    where = subprocess.run([str(py), "-c", "import tinytorch_progress as t; print(t.__file__)"], cwd=tmp, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, capture_output=True, text=True, check=True).stdout.strip()
    if not where.startswith(site): sys.exit(f"benchmark: the venv imports tinytorch_progress from {where}, not from the wheel")
    return [str(env_dir / "bin" / "tito")], [str(py), "-c", "pass"]


def run_timed(cmd, cwd=None, env=None) -> tuple[float, float]:
    "Wall-clock and CPU seconds (user + system) of one run; CPU time is what a busy machine distorts least."
    import resource
    r0, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0: sys.exit(f"benchmark command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr.decode()[-2000:]}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def interleaved(cmds: dict, runs: int, cwd=None, env=None) -> dict:
    "Wall seconds of each run of each command (and CPU seconds under `cpu:NAME`), run in turn so that machine noise hits all alike."
    for c in cmds.values(): run_timed(c, cwd, env)  # warm the OS cache and .pyc files
    times = {k: [] for k in cmds} | {f"cpu:{k}": [] for k in cmds}
    for _ in range(runs):
        for k, c in cmds.items():
            wall, cpu = run_timed(c, cwd, env)
            times[k].append(wall); times[f"cpu:{k}"].append(cpu)
    return times


def peak_rss_kb(cmd, cwd=None, env=None) -> int:
    "Peak resident memory of `cmd` alone: measured in a fresh parent whose only child it is."
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *map(str, cmd)], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())  # kilobytes on Linux


def magic_times(root: Path, runs: int) -> dict:
    "`%tito status` in a warm InteractiveShell: the magic alone, and the whole cell with its display."
    from IPython.core.interactiveshell import InteractiveShell
    old = os.getcwd(); os.chdir(root)
    try:
        sh = InteractiveShell.instance()
        sh.run_line_magic("load_ext", "tinytorch_progress")
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            for _ in range(5): sh.run_cell("%tito status", store_history=False)  # warm: imports, caches
            magic, cell = [], []
            for _ in range(runs):
                t = time.perf_counter(); res = sh.run_line_magic("tito", "status"); magic.append(time.perf_counter() - t)
                t = time.perf_counter(); r = sh.run_cell("%tito status", store_history=False); cell.append(time.perf_counter() - t)
                if not r.success: sys.exit(f"%tito status failed: {r.error_in_exec or r.error_before_exec}")
        assert res is not None and "9/20" in str(getattr(res, "text", res)), getattr(res, "text", res)
        return {"magic": magic, "cell": cell}
    finally:
        os.chdir(old)


def upstream(runs: int) -> dict:
    "Time upstream TinyTorch's `tito module status` in the checkout named by TINYTORCH_CHECKOUT, or say why not."
    path = os.environ.get("TINYTORCH_CHECKOUT")
    if not path: return {"skipped": "TINYTORCH_CHECKOUT is not set"}
    co = Path(path).expanduser()
    if not (co / "tito" / "main.py").exists(): return {"skipped": f"{co} has no tito/main.py: not a TinyTorch checkout"}
    py = os.environ.get("TINYTORCH_PYTHON", sys.executable)
    cmd = [py, "-m", "tito.main", "module", "status"]
    env = {**os.environ, "PYTHONPATH": str(co) + os.pathsep + os.environ.get("PYTHONPATH", ""), "NO_COLOR": "1", "TERM": "dumb"}
    probe = subprocess.run(cmd, cwd=co, env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"upstream `tito module status` failed in {co} (set TINYTORCH_PYTHON to its environment's Python): {why}"}
    t = interleaved({"upstream": cmd}, runs, cwd=co, env=env)["upstream"]
    return {"command": " ".join(cmd), "checkout": str(co), "runs_s": t, "median_s": statistics.median(t)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21, help="timed runs of each command (>= 15; median reported)")
    ap.add_argument("--magic-runs", type=int, default=200)
    ap.add_argument("--no-wheel", action="store_true", help="skip the wheel install; time the checkout only")
    ap.add_argument("--out", default=str(HERE / "results" / "status.json"))
    args = ap.parse_args(argv)
    runs = max(15, args.runs)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("TITO_ROOT", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up run writes .pyc files, as an installed package has them
    tmp = Path(tempfile.mkdtemp(prefix="bench-status-"))
    try:
        root = tmp / "course"
        make_workspace(root)
        wt = None
        if not args.no_wheel:
            wtito, wbase = wheel_install(tmp)
            wenv = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # the installed wheel, nothing else
            floor = [wbase[0], "-c", "import re"]  # what the console script itself imports before any of our code
            wt = interleaved({"python -c pass": wbase, "python -c 'import re'": floor, "tito status": [*wtito, "--root", str(root), "status"]},
                             runs, cwd=root, env=wenv)
        tito = [*tito_command(), "--root", str(root), "status"]
        base = [sys.executable, "-c", "pass"]
        t = interleaved({"python -c pass": base, "tito status": tito}, runs, cwd=root, env=env)
        rss_tito, rss_base = peak_rss_kb(tito, root, env), peak_rss_kb(base, root, env)
        mt = magic_times(root, args.magic_runs)
        up = upstream(runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = lambda xs: statistics.median(xs)
    med_tito, med_base = med(t["tito status"]), med(t["python -c pass"])
    ratio_co = med_tito / med_base
    ratio = med(wt["tito status"]) / med(wt["python -c pass"]) if wt else None
    med_magic, med_cell = med(mt["magic"]) * 1000, med(mt["cell"]) * 1000
    ok_ratio = ratio <= TARGET_RATIO if wt else ratio_co <= TARGET_CHECKOUT_RATIO
    m = machine()
    ms = lambda xs: [round(x * 1000, 1) for x in xs]
    result = {
        "benchmark": "status",
        "ratio_tito_status_vs_python_c_pass": round(ratio, 2) if wt else None, "target_ratio": TARGET_RATIO,
        "ratio_within_target": ok_ratio,
        "wheel": None if not wt else {
            "tito_status_median_ms": round(med(wt["tito status"]) * 1000, 1), "python_c_pass_median_ms": round(med(wt["python -c pass"]) * 1000, 1),
            "tito_runs_ms": ms(wt["tito status"]), "baseline_runs_ms": ms(wt["python -c pass"]),
            "cpu_ratio_tito_status_vs_python_c_pass": round(med(wt["cpu:tito status"]) / med(wt["cpu:python -c pass"]), 2),
            "tito_status_cpu_median_ms": round(med(wt["cpu:tito status"]) * 1000, 1),
            "python_c_pass_cpu_median_ms": round(med(wt["cpu:python -c pass"]) * 1000, 1),
            "python_c_import_re_median_ms": round(med(wt["python -c 'import re'"]) * 1000, 1),
            "install": "this checkout's wheel, --no-deps, in a fresh venv seeing this environment's packages"},
        "checkout": {"ratio_tito_status_vs_python_c_pass": round(ratio_co, 2), "target_ratio": TARGET_CHECKOUT_RATIO,
                     "tito_status_median_ms": round(med_tito * 1000, 1), "python_c_pass_median_ms": round(med_base * 1000, 1),
                     "tito_runs_ms": ms(t["tito status"]), "baseline_runs_ms": ms(t["python -c pass"])},
        "magic_status_median_ms": round(med_magic, 2), "magic_cell_median_ms": round(med_cell, 2),
        "magic_p90_ms": round(sorted(mt["magic"])[int(0.9 * len(mt["magic"]))] * 1000, 2),
        "target_magic_ms": TARGET_MAGIC_MS, "magic_within_target": med_cell < TARGET_MAGIC_MS,
        "peak_rss_tito_status_mb": round(rss_tito / 1024, 1), "peak_rss_python_c_pass_mb": round(rss_base / 1024, 1),
        "runs": runs, "magic_runs": args.magic_runs, "command": " ".join([Path(tito[0]).name, *tito[1:2], "ROOT", "status"]),
        "workspace": "default curriculum: 20 modules (folders present), 9 completed, 1 started, 2 milestones completed",
        "upstream": ({"skipped": up["skipped"]} if "skipped" in up else
                     {"command": up["command"], "median_ms": round(up["median_s"] * 1000, 1),
                      "speedup_vs_upstream": round(up["median_s"] / med_tito, 2), "runs_ms": ms(up["runs_s"])}),
        "machine": m, "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    ok = ok_ratio and med_cell < TARGET_MAGIC_MS
    verdict = lambda good: "OK" if good else "MISSED"
    if wt:
        print(f"status: wheel install: tito status / python -c pass = {ratio:.2f}x (target <= {TARGET_RATIO:g}x: {verdict(ratio <= TARGET_RATIO)})")
        print(f"  tito status {med(wt['tito status']) * 1000:.1f} ms vs python -c pass {med(wt['python -c pass']) * 1000:.1f} ms (medians of {runs}, interleaved)")
        print(f"  CPU time (user + system): {med(wt['cpu:tito status']) * 1000:.1f} ms vs {med(wt['cpu:python -c pass']) * 1000:.1f} ms = "
              f"{med(wt['cpu:tito status']) / med(wt['cpu:python -c pass']):.2f}x (less distorted by a busy machine)")
        floor_s = med(wt["python -c 'import re'"])
        print(f"  the console script's own `import re`, before any of our code: {floor_s * 1000:.1f} ms "
              f"({floor_s / med(wt['python -c pass']):.2f}x python -c pass)")
    else: print("status: wheel install skipped (--no-wheel)")
    print(f"  checkout: tito status / python -c pass = {ratio_co:.2f}x (target <= {TARGET_CHECKOUT_RATIO:g}x: {verdict(ratio_co <= TARGET_CHECKOUT_RATIO)}); "
          f"{med_tito * 1000:.1f} ms vs {med_base * 1000:.1f} ms")
    print(f"  %tito status in a warm shell: {med_cell:.2f} ms per cell, {med_magic:.2f} ms magic alone "
          f"(target < {TARGET_MAGIC_MS:g} ms: {verdict(med_cell < TARGET_MAGIC_MS)})")
    print(f"  peak RSS: tito status {rss_tito / 1024:.1f} MB, python -c pass {rss_base / 1024:.1f} MB")
    if "skipped" in up: print(f"  upstream TinyTorch: skipped ({up['skipped']})")
    else:
        sp = up["median_s"] / med_tito
        print(f"  upstream `tito module status`: {up['median_s'] * 1000:.1f} ms -> ours is "
              + (f"{sp:.1f}x faster" if sp >= 1 else f"{1 / sp:.1f}x slower"))
    print(f"  {machine_line(m)}")
    print(f"  wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
