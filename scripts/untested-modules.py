"""Run the quick loop (`pytest -m "not slow"` and `nbdev_test`) under coverage and list the package's modules it leaves
untested: those of which no line ran, and those only imported (no line inside any of their functions ran). Also says
which modules only one half of the loop runs. Exits 1 when a module has no line run.

Usage: .venv/bin/python scripts/untested-modules.py   (needs the dev extra: coverage, pytest, nbdev)
Subprocesses (`tito` in the tests, the runner's children) are measured too (coverage's `patch = subprocess`)."""
import ast, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tinytorch_progress"
BIN = Path(sys.executable).parent

RC = """[run]
source_pkgs = tinytorch_progress
data_file = {data}
parallel = true
concurrency = multiprocessing, thread
patch = subprocess, _exit
"""

LOOP = {"pytest -m 'not slow'": ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", "tests"],
        "nbdev_test": [str(BIN / "nbdev_test"), "--n_workers", "2"]}


def measure(name: str, args: list, tmp: Path) -> dict[Path, set[int]]:
    "Run one half of the loop under coverage: the lines run in each file of the package."
    import coverage
    rc = tmp / f"{len(os.listdir(tmp))}.coveragerc"
    rc.write_text(RC.format(data=tmp / f"{rc.stem}.data"))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "coverage", "run", f"--rcfile={rc}", *args], cwd=ROOT, capture_output=True, text=True)
    print(f"{name}: exit code {p.returncode} in {time.monotonic() - t0:.0f} s under coverage")
    if p.returncode: print((p.stdout + p.stderr)[-3000:])
    subprocess.run([sys.executable, "-m", "coverage", "combine", f"--rcfile={rc}", "-q"], cwd=ROOT, check=True)
    cov = coverage.Coverage(config_file=str(rc)); cov.load()
    data = cov.get_data()
    return {Path(f).resolve(): set(data.lines(f) or ()) for f in data.measured_files()}


def function_lines(path: Path) -> set[int]:
    "Lines inside the bodies of the module's functions and methods: what runs only when they are called."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in node.body: out.update(range(stmt.lineno, stmt.end_lineno + 1))
    return out


def main() -> int:
    modules = sorted(p for p in PKG.rglob("*.py") if p.name not in ("__init__.py", "__main__.py", "_modidx.py"))
    with tempfile.TemporaryDirectory() as d:
        runs = {name: measure(name, args, Path(d)) for name, args in LOOP.items()}
    name = lambda p: str(p.relative_to(ROOT))
    none_ran, imported_only, by = [], [], {n: [] for n in runs}
    for m in modules:
        ran = {n: lines.get(m.resolve(), set()) for n, lines in runs.items()}
        body = function_lines(m)
        called = {n for n, lines in ran.items() if lines & body}
        if not any(ran.values()): none_ran.append(name(m))
        elif not called and body: imported_only.append(name(m))
        elif len(called) == 1: by[called.pop()].append(name(m))
    print(f"\n{len(modules)} modules of the package")
    print("no line run by the quick loop:", ", ".join(none_ran) or "none")
    print("only imported (none of their functions ran):", ", ".join(imported_only) or "none")
    for n, ms in by.items(): print(f"functions run by {n} only:", ", ".join(ms) or "none")
    return 1 if none_ran else 0


if __name__ == "__main__":
    sys.exit(main())
