"""Benchmark: `tito report --all --json` on a TinyTorch-size course, as `.ipynb` and as percent `.py`, against `python -c pass`.

The course comes from `gen_course.py` (20 modules of 29–47 cells, 1,100–1,950 lines; deterministic). In one run it
measures, interleaved run by run with the baseline: the `.ipynb` course (target <= 15x), the percent `.py` course
(target <= 20x); the first `%tito report` in a fresh kernel started through jupyter_client (target < 0.5 s); the
growth of grading time with a module's size (a module of 10x the lines, target <= 12x the time); and, when
TINYTORCH_ANALYZER names upstream TinyTorch's `instructor/tools/tinytorch_module_analyzer.py` (or TINYTORCH_CHECKOUT a
checkout holding it), upstream's analyzer on the same 20 percent modules (`NN_name/name_dev.py`, as it reads them), in the same
process (CPU time of grading all 20, interleaved) and as a fresh process each (wall time, interleaved): ours must be
faster.

Run: `python benchmarks/bench_report.py [--runs N] [--no-kernel]`. Prints the ratios first, writes results/report.json.
"""
import argparse, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_course import MODULES, make_course, module_cells, to_ipynb  # noqa: E402

TARGETS = {"ipynb": 15.0, "py": 20.0}
KERNEL_TARGET_S, SCALING_TARGET = 0.5, 12.0


def timed(cmd, cwd, env) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0: sys.exit(f"benchmark command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr}")
    return dt


def cli_ratios(root: Path, runs: int, env) -> dict:
    "Median seconds of `tito report --all --json` per format and of `python -c pass`, interleaved."
    base = [sys.executable, "-c", "pass"]
    courses, out = {}, {}
    for fmt in TARGETS:
        d = root / fmt
        info = make_course(d, fmt)
        courses[fmt] = ([sys.executable, "-m", "tinytorch_progress.cli.main", "--root", str(d), "report", "--all", "--json"], d, info)
        timed(courses[fmt][0], d, env)  # warm the OS cache and .pyc files
    timed(base, root, env)
    t_base, t = [], {fmt: [] for fmt in TARGETS}
    for _ in range(runs):
        for fmt, (cmd, d, _) in courses.items():
            t_base.append(timed(base, root, env))
            t[fmt].append(timed(cmd, d, env))
    med_base = statistics.median(t_base)
    for fmt, (cmd, d, info) in courses.items():
        cards = json.loads(subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True).stdout)
        assert len(cards) == len(MODULES), cards
        med = statistics.median(t[fmt])
        out[fmt] = {"median_s": round(med, 4), "ratio": round(med / med_base, 2), "target_ratio": TARGETS[fmt],
                    "within_target": med / med_base <= TARGETS[fmt], "cells_total": info["cells"],
                    "lines_per_module": [min(info["lines"]), max(info["lines"])], "runs_s": [round(x, 4) for x in t[fmt]]}
    out["baseline_python_c_pass_median_s"] = round(med_base, 4)
    out["baseline_runs_s"] = [round(x, 4) for x in t_base]
    return out


def scaling(root: Path, repeats: int = 9) -> dict:
    "Grading time (CPU, best of `repeats`) of one module against the same module with every cell's source repeated 10 times."
    from tinytorch_progress.report.grading import analyze
    times = {}
    for k in (1, 10):
        d = root / f"scale{k}" / "modules" / "05_autograd"
        d.mkdir(parents=True, exist_ok=True)
        cells = [(kind, "\n".join([src] * k), g) for kind, src, g in module_cells(5, "autograd")]
        nb = d / "05_autograd.ipynb"
        nb.write_text(to_ipynb(cells), encoding="utf-8")
        analyze(nb)
        times[k] = min(_clock(analyze, nb) for _ in range(repeats))
    return {"module_s": round(times[1], 4), "module_10x_lines_s": round(times[10], 4), "ratio": round(times[10] / times[1], 2),
            "target_ratio": SCALING_TARGET, "within_target": times[10] / times[1] <= SCALING_TARGET}


def _clock(f, *a) -> float:
    "CPU seconds of this process for one call: the work itself, not what other programs on the machine take."
    t = time.process_time(); f(*a); return time.process_time() - t


def upstream_analyzer():
    "The path of upstream's analyzer, or None."
    path = os.environ.get("TINYTORCH_ANALYZER")
    if not path and os.environ.get("TINYTORCH_CHECKOUT"):
        path = str(Path(os.environ["TINYTORCH_CHECKOUT"]) / "instructor" / "tools" / "tinytorch_module_analyzer.py")
    return Path(path).expanduser() if path and Path(path).expanduser().is_file() else None


UPSTREAM_ALL = """import sys, importlib.util
spec = importlib.util.spec_from_file_location("tinytorch_module_analyzer", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
a = m.TinyTorchModuleAnalyzer(sys.argv[2])
cards = [a.analyze_module(name) for name in sys.argv[3:]]
print(len(cards))
"""


def versus_upstream(root: Path, runs: int, env) -> dict:
    "Ours and upstream's analyzer on the same 20 percent modules: in one process (CPU) and as fresh processes (wall)."
    path = upstream_analyzer()
    if path is None: return {"skipped": "set TINYTORCH_ANALYZER to upstream's tinytorch_module_analyzer.py (or TINYTORCH_CHECKOUT)"}
    import importlib.util
    from tinytorch_progress.report.grading import analyze
    course = root / "py"  # its modules are `modules/NN_name/name_dev.py`, as upstream reads them
    names = [d.name for d in sorted((course / "modules").iterdir())]
    spec = importlib.util.spec_from_file_location("tinytorch_module_analyzer", path)
    up = importlib.util.module_from_spec(spec); spec.loader.exec_module(up)
    analyzer = up.TinyTorchModuleAnalyzer(str(course / "modules"))
    ours_all = lambda: [analyze(course / "modules" / n, course) for n in names]
    theirs_all = lambda: [analyzer.analyze_module(n) for n in names]
    ours_all(); theirs_all()
    cpu = {"ours": [], "upstream": []}
    for _ in range(runs):
        cpu["ours"].append(_clock(ours_all)); cpu["upstream"].append(_clock(theirs_all))
    cmds = {"ours": ([sys.executable, "-m", "tinytorch_progress.cli.main", "--root", str(course), "report", "--all", "--json", "--no-save"], course),
            "upstream": ([sys.executable, "-c", UPSTREAM_ALL, str(path), str(course / "modules"), *names], root)}
    wall = {k: [] for k in cmds}
    for _ in range(runs):
        for k, (cmd, cwd) in cmds.items(): wall[k].append(timed(cmd, cwd, env))
    med = lambda xs: statistics.median(xs)
    return {"modules": len(names), "in_process_cpu_s": {k: round(med(v), 4) for k, v in cpu.items()},
            "in_process_speedup": round(med(cpu["upstream"]) / med(cpu["ours"]), 2),
            "fresh_process_wall_s": {k: round(med(v), 4) for k, v in wall.items()},
            "fresh_process_speedup": round(med(wall["upstream"]) / med(wall["ours"]), 2),
            "within_target": med(cpu["ours"]) < med(cpu["upstream"]) and med(wall["ours"]) < med(wall["upstream"])}


def kernel_first_report(root: Path) -> dict:
    "Seconds of the first `%tito report MODULE --no-save` in a fresh IPython kernel (the extension loaded just before)."
    try: from jupyter_client.manager import start_new_kernel
    except ImportError as e: return {"skipped": f"jupyter_client is not installed ({e})"}
    module = root / "ipynb" / "modules" / "05_autograd"
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(root / "ipynb"))
    try:
        def run(code):
            t = time.perf_counter()
            reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
            dt = time.perf_counter() - t
            if reply["content"]["status"] != "ok": raise RuntimeError(f"kernel: {code!r}: {reply['content']}")
            return dt
        load = run("%load_ext tinytorch_progress.magics")
        first = run(f"%tito report {module} --no-save")
        second = run(f"%tito report {module} --no-save")
        try: loaded = not run("import sys; assert 'nbformat' not in sys.modules") and False
        except RuntimeError: loaded = True
    finally:
        kc.stop_channels(); km.shutdown_kernel(now=True)
    return {"load_ext_s": round(load, 4), "first_report_s": round(first, 4), "second_report_s": round(second, 4),
            "target_s": KERNEL_TARGET_S, "within_target": first < KERNEL_TARGET_S, "nbformat_loaded": loaded}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="timed runs of each command (median reported)")
    ap.add_argument("--no-kernel", action="store_true", help="skip the kernel measurement")
    ap.add_argument("--out", default=str(HERE / "results" / "report.json"))
    args = ap.parse_args(argv)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("TITO_ROOT", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up run writes .pyc files, as an installed package has them
    root = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        cli = cli_ratios(root, args.runs, env)
        scale = scaling(root)
        upstream = versus_upstream(root, args.runs, env)
        kernel = {"skipped": "--no-kernel"} if args.no_kernel else kernel_first_report(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ok = (cli["ipynb"]["within_target"] and cli["py"]["within_target"] and scale["within_target"] and kernel.get("within_target", True)
          and upstream.get("within_target", True))
    result = {"benchmark": "tito report --all --json", "modules": len(MODULES), "runs": args.runs, **cli, "scaling": scale,
              "upstream": upstream, "kernel": kernel, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
              "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                          "implementation": platform.python_implementation(), "platform": platform.platform(),
                          "processor": platform.processor() or platform.machine()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    base = cli["baseline_python_c_pass_median_s"]
    for fmt, name in (("ipynb", ".ipynb"), ("py", "percent .py")):
        r = cli[fmt]
        print(f"report: tito report --all --json ({name}) / python -c pass = {r['ratio']:.1f}x "
              f"(target <= {r['target_ratio']:.0f}x: {'OK' if r['within_target'] else 'MISSED'})")
    print(f"  medians: .ipynb {cli['ipynb']['median_s'] * 1000:.0f} ms, .py {cli['py']['median_s'] * 1000:.0f} ms, "
          f"python -c pass {base * 1000:.1f} ms ({args.runs} runs each, interleaved); "
          f"{len(MODULES)} modules, {cli['ipynb']['cells_total']} cells, {cli['py']['lines_per_module'][0]}–"
          f"{cli['py']['lines_per_module'][1]} lines per .py module")
    print(f"  10x the lines: {scale['ratio']:.1f}x the time (target <= {SCALING_TARGET:.0f}x: "
          f"{'OK' if scale['within_target'] else 'MISSED'}; {scale['module_s'] * 1000:.0f} ms -> {scale['module_10x_lines_s'] * 1000:.0f} ms)")
    if "skipped" in upstream: print(f"  upstream's analyzer: skipped ({upstream['skipped']})")
    else:
        c, w = upstream["in_process_cpu_s"], upstream["fresh_process_wall_s"]
        print(f"  vs upstream's analyzer, same {upstream['modules']} modules: in one process ours {c['ours'] * 1000:.0f} ms CPU, "
              f"upstream {c['upstream'] * 1000:.0f} ms ({upstream['in_process_speedup']:.2f}x); as a fresh process ours "
              f"{w['ours'] * 1000:.0f} ms, upstream {w['upstream'] * 1000:.0f} ms ({upstream['fresh_process_speedup']:.2f}x): "
              f"{'OK' if upstream['within_target'] else 'MISSED'}")
    if "skipped" in kernel: print(f"  kernel: skipped ({kernel['skipped']})")
    else:
        print(f"  first %tito report in a fresh kernel: {kernel['first_report_s'] * 1000:.0f} ms (target < "
              f"{KERNEL_TARGET_S * 1000:.0f} ms: {'OK' if kernel['within_target'] else 'MISSED'}); second "
              f"{kernel['second_report_s'] * 1000:.0f} ms; %load_ext {kernel['load_ext_s'] * 1000:.0f} ms; "
              f"nbformat {'loaded' if kernel['nbformat_loaded'] else 'not loaded'}")
    load = f", load average {result['load_average_1_5_15'][0]:.1f}" if result["load_average_1_5_15"] else ""
    print(f"  machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()} ({platform.platform()}){load}")
    print(f"  wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
