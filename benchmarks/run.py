"""Run every benchmark (benchmarks/bench_*.py) or the ones named, each in its own process, and summarise their results.

    python benchmarks/run.py                 # all of them
    python benchmarks/run.py status store    # bench_status.py and bench_store.py
    python benchmarks/run.py --list

Each benchmark prints its own report and writes benchmarks/results/<name>.json; this runner collects those files into
benchmarks/results/summary.json and prints the headline figures (ratios first). Exit code: 0 when every benchmark ran and
met its target, 1 otherwise.
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
HEADLINE = ("ratio", "speedup", "per_s", "p50", "p99", "median", "peak_rss", "lost", "within_target")


def discover() -> dict:
    "name -> script, for every benchmarks/bench_<name>.py."
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def _figures(result: dict, prefix="") -> list[tuple[int, str]]:
    items = []
    for k, v in result.items():
        if isinstance(v, dict) and k != "machine" and not k.startswith("target"):
            items += _figures(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float, bool)) and any(h in k for h in HEADLINE) and not k.startswith("target"):
            items.append((next(i for i, h in enumerate(HEADLINE) if h in k), f"{prefix}{k}={v}"))
        elif k == "skipped":
            items.append((len(HEADLINE), f"{prefix}skipped: {v}"))
    return items


def headline(result: dict) -> list[str]:
    "The figures worth a summary line: ratios and speed-ups first, then rates, latencies, memory, losses, verdicts."
    return [s for _, s in sorted(_figures(result), key=lambda x: x[0])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="benchmarks to run (status, store, report, server, ...); default: all")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    found = discover()
    if args.list:
        for name, p in found.items():
            doc = (p.read_text().split('"""')[1].strip().splitlines() or [""])[0] if '"""' in p.read_text() else ""
            print(f"{name:10} {doc}")
        return 0
    wanted = [n.removeprefix("bench_").removesuffix(".py") for n in args.names] or list(found)
    unknown = [n for n in wanted if n not in found]
    if unknown:
        print(f"run.py: unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(found)}", file=sys.stderr)
        return 2
    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "implementation": platform.python_implementation(),
               "platform": platform.platform(), "machine": platform.machine()}
    print(f"machine: {machine['cpu_count']} cores, {machine['implementation']} {machine['python']}, {machine['platform']}\n")
    RESULTS.mkdir(exist_ok=True)
    summary = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine, "benchmarks": {}}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in wanted:
        script, out = found[name], RESULTS / f"{name}.json"
        print(f"=== {name} ({script.name}) ===", flush=True)
        started = time.time()
        rc = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, env=env).returncode
        seconds = time.time() - started
        result = None
        if out.exists() and out.stat().st_mtime >= started - 1:
            try: result = json.loads(out.read_text())
            except json.JSONDecodeError: result = None
        state = "ok" if rc == 0 else "target missed" if rc == 1 and result is not None else f"failed (exit {rc})"
        summary["benchmarks"][name] = {"status": state, "exit_code": rc, "seconds": round(seconds, 1), "result": result}
        print(f"--- {name}: {state} in {seconds:.1f} s\n", flush=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("=== summary ===")
    for name, b in summary["benchmarks"].items():
        print(f"{name:8} {b['status']:14} " + ("; ".join(headline(b["result"])[:10]) if b["result"] else "no result file written"))
    print(f"\nwrote {RESULTS / 'summary.json'}")
    return 0 if all(b["status"] == "ok" for b in summary["benchmarks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
