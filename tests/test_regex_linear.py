"""Every regular expression in the package runs in linear time on adversarial input.

A backtracking pattern turns one student's notebook into a hung `tito report --all` (a heading of `## x`, 3,000 spaces
and `y` once took minutes). This test reads every literal pattern the package hands to `re` (found with `ast`, so a new
pattern is checked without being listed here) and runs it over a table of pumped inputs: a prefix that steers the
pattern into its repeating part, a long run of one piece, and a suffix that makes the match fail at the end. A linear
pattern scans 3,000 characters in well under a millisecond; a quadratic one needs tens of milliseconds and a cubic one
seconds, so a generous per-call budget separates them even on a busy machine.
"""
import ast, pickle, re, subprocess, sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinytorch_progress"
RE_FUNCS = {"compile", "match", "search", "fullmatch", "findall", "finditer", "sub", "subn", "split"}

PREFIXES = ["", "#", "## x", "# a", "**a", "step 1", "class ", "def ", "x is", "%", "#|", "01_", "part", "[a](", "<a",
            "a:", "`", "a -"]
PUMPS = [" ", "a", "1", "#", "*", "\t", "_", "-", ":", ".", "`", "a ", " a", "**", "[]", "()", "<>", "x\n", "# ", "é",
         "\u202e", "and "]
SUFFIXES = ["", "y", "\x00", "\n"]
LENGTH = 3000
BUDGET_S = 0.05  # per call; linear patterns take ~0.1 ms here


def _flags(node) -> int:
    "Evaluate a flags expression made of `re.X` names joined by `|` (0 when it is not literal)."
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "re":
        return getattr(re, node.attr, 0)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr): return _flags(node.left) | _flags(node.right)
    return 0


def package_patterns() -> list:
    "(where, compiled pattern) for every literal pattern passed to a `re` function in the package."
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_modidx.py": continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RE_FUNCS
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args): continue
            pat = node.args[0]
            if not (isinstance(pat, ast.Constant) and isinstance(pat.value, str)): continue
            flag_nodes = [k.value for k in node.keywords if k.arg == "flags"]
            if node.func.attr == "compile" and len(node.args) > 1: flag_nodes.append(node.args[1])
            if node.func.attr in {"match", "search", "fullmatch", "findall", "finditer", "split"} and len(node.args) > 2:
                flag_nodes.append(node.args[2])
            flags = 0
            for f in flag_nodes: flags |= _flags(f)
            found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", re.compile(pat.value, flags)))
    return found


PATTERNS = package_patterns()


def test_the_scan_finds_the_package_patterns():
    assert len(PATTERNS) >= 10, PATTERNS
    assert any("report_card" in where for where, _ in PATTERNS)


def adversarial_inputs():
    for prefix in PREFIXES:
        for pump in PUMPS:
            body = prefix + pump * (LENGTH // len(pump))
            for suffix in SUFFIXES: yield body + suffix


INPUTS = list(adversarial_inputs())


WORKER = """
import pickle, sys, time
pattern, inputs, budget = pickle.load(sys.stdin.buffer)
for text in inputs:
    for op in (pattern.search, pattern.findall):
        dt = budget * 2
        for _ in range(3):  # best of three: a busy machine can pause any call once; a backtracking one is slow every time
            t0 = time.perf_counter(); op(text); dt = min(dt, time.perf_counter() - t0)
            if dt <= budget: break
        if dt > budget:
            print(f"{dt * 1000:.0f} ms on {len(text)} chars ({text[:12] + '...' + text[-6:]!r})"); sys.exit(1)
"""


@pytest.mark.parametrize("where,pattern", PATTERNS, ids=[w for w, _ in PATTERNS])
def test_pattern_is_linear_on_adversarial_input(where, pattern):
    # In a child process: a backtracking pattern holds the GIL for minutes and ignores signals, so only a kill stops it.
    try:
        run = subprocess.run([sys.executable, "-c", WORKER], input=pickle.dumps((pattern, INPUTS, BUDGET_S)),
                             capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where}: {pattern.pattern!r} did not finish the adversarial table in 20 s: it backtracks")
    assert run.returncode == 0, (f"{where}: {pattern.pattern!r} took {run.stdout.decode().strip() or run.stderr.decode()}: "
                                 "it backtracks; rewrite it without nested or adjacent overlapping repeats")
