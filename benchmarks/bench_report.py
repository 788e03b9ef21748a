"""Benchmark: `tito report --all` over 20 module notebooks of ~60 cells, against `python -c pass`.

Run: `python benchmarks/bench_report.py [--runs N]`. Prints the ratio (target <= 30x), cards per second and the
machine, and writes benchmarks/results/report.json.
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 30.0
MODULES = ["tensor", "activations", "layers", "losses", "autograd", "optimizers", "training", "dataloader", "spatial",
           "tokenization", "embeddings", "attention", "transformers", "profiling", "quantization", "compression",
           "memoization", "acceleration", "benchmarking", "capstone"]


def _cell(kind, src, nbgrader=None):
    md = {"nbgrader": nbgrader} if nbgrader else {}
    c = {"cell_type": kind, "metadata": md, "source": src.splitlines(True)}
    if kind == "code": c.update(execution_count=None, outputs=[])
    return c


def module_notebook(n: int, slug: str) -> dict:
    "A TinyTorch-style module notebook of 60 cells: concepts, exported solutions with hints, unit tests."
    Cls = slug.title()
    cells = [_cell("markdown", f"# Module {n:02d}: {Cls}\n\nWhat is {slug}? In this module you build **{Cls}** from scratch.\n"),
             _cell("code", f"#| default_exp {slug}\n#| export\nimport numpy as np\nimport math\nfrom typing import Optional\n")]
    for k in range(1, 18):
        cells.append(_cell("markdown", f"## Step {k}: Implementing {Cls}Op{k}\n\nThe operation computes $y = f_{k}(x)$ where "
                                       f"$f_{k}(x) = \\sum_i w_i x_i$. Understanding the tensor shapes is the key step.\n"
                                       + "More explanation of the gradient flow. " * 8 + "\n"))
        cells.append(_cell("code", "\n".join([
            "#| export", f"class {Cls}Op{k}:", f'    """{Cls} operation {k}.', "", "    TODO: implement forward.",
            "    APPROACH:", "    1. Check the input shape", "    2. Apply the weights", "    EXAMPLE:",
            f"    >>> {Cls}Op{k}()(np.ones(3))", '    """', "    def __init__(self, size=3):", "        self.w = np.ones(size)",
            "    def __call__(self, x):", "        ### BEGIN SOLUTION", "        if x.ndim != 1:",
            "            raise ValueError('expected a vector')", "        out = x @ self.w", "        for i in range(len(x)):",
            "            out = out + 0.0 * x[i]", "        return np.asarray(out)", "        ### END SOLUTION"]),
            {"grade": False, "grade_id": f"op{k}", "locked": False, "schema_version": 3, "solution": True}))
        cells.append(_cell("code", "\n".join([
            f"def test_unit_op{k}():", f"    op = {Cls}Op{k}()", "    assert op(np.ones(3)) == 3.0",
            "    print('✅ op works')", f"test_unit_op{k}()"]),
            {"grade": True, "grade_id": f"test_op{k}", "locked": True, "points": 1, "schema_version": 3, "solution": False}))
        if k % 3 == 0:
            cells.append(_cell("markdown", "### 🎯 Checkpoint\n\nReview what you built: shapes, broadcasting and the backward pass.\n"))
    cells.append(_cell("markdown", "## Summary\n\nYou built the module. Next: the following module.\n"))
    for i, c in enumerate(cells): c["id"] = f"cell-{i:03d}"
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def make_workspace(root: Path) -> int:
    (root / ".tito").mkdir(parents=True, exist_ok=True)
    cells = 0
    for n, slug in enumerate(MODULES, 1):
        d = root / "modules" / f"{n:02d}_{slug}"
        d.mkdir(parents=True, exist_ok=True)
        nb = module_notebook(n, slug)
        cells += len(nb["cells"])
        (d / f"{n:02d}_{slug}.ipynb").write_text(json.dumps(nb, indent=1))
    return cells


def timed(cmd, cwd, env) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0: sys.exit(f"benchmark command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each command (median reported)")
    ap.add_argument("--out", default=str(HERE / "results" / "report.json"))
    args = ap.parse_args(argv)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("TITO_ROOT", None)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        cells = make_workspace(root)
        tito = [sys.executable, "-m", "tinytorch_progress.cli", "--root", str(root), "report", "--all"]
        base = [sys.executable, "-c", "pass"]
        timed(tito, root, env); timed(base, root, env)  # warm the OS cache and .pyc files
        t_tito, t_base = [], []
        for _ in range(args.runs):
            t_base.append(timed(base, root, env))
            t_tito.append(timed(tito, root, env))
        written = sorted((root / "instructor" / "reports").glob("*_report_card_*.json"))
        cards = json.loads(subprocess.run(tito + ["--json", "--no-save"], cwd=root, env=env, capture_output=True, text=True).stdout)
    med_tito, med_base = statistics.median(t_tito), statistics.median(t_base)
    ratio = med_tito / med_base
    result = {
        "benchmark": "tito report --all",
        "notebooks": len(MODULES), "cells_total": cells, "cells_per_notebook": round(cells / len(MODULES), 1),
        "runs": args.runs, "median_s": round(med_tito, 4), "baseline_python_c_pass_median_s": round(med_base, 4),
        "ratio": round(ratio, 2), "target_ratio": TARGET_RATIO, "within_target": ratio <= TARGET_RATIO,
        "cards_per_second": round(len(MODULES) / med_tito, 1),
        "all_runs_s": [round(x, 4) for x in t_tito], "baseline_runs_s": [round(x, 4) for x in t_base],
        "cards_checked": len(cards), "files_written_last_run": len(written) > 0,
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "implementation": platform.python_implementation(),
                    "platform": platform.platform(), "machine": platform.machine()},
    }
    assert len(cards) == len(MODULES) and all(c["total_cells"] == len(module_notebook(1, "x")["cells"]) for c in cards)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"tito report --all: {len(MODULES)} notebooks x ~{result['cells_per_notebook']:.0f} cells")
    print(f"  median {med_tito * 1000:.0f} ms vs python -c pass {med_base * 1000:.1f} ms  ->  ratio {ratio:.1f}x "
          f"(target <= {TARGET_RATIO:.0f}x: {'OK' if ratio <= TARGET_RATIO else 'MISSED'})")
    print(f"  {result['cards_per_second']} cards/second")
    print(f"  machine: {os.cpu_count()} cores, Python {platform.python_version()} ({platform.platform()})")
    print(f"  wrote {out}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
