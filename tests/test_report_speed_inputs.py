"""Report cards stay the same while getting faster, and hostile inputs are refused before any work.

- Cards of a generated TinyTorch-size course (benchmarks/gen_course.py) in both formats equal golden cards made by the
  code of commit 85cabdf (tests/data/golden_report_cards.json), key for key and in the same order, and the format's
  pydantic model accepts them unchanged.
- Special files (a link to /dev/zero, /dev/urandom as .py, a FIFO named .ipynb) are one-line errors at once.
- A notebook of 3 million lines is refused before it is analysed.
- A markdown heading built to make a backtracking regex explode is graded in linear time.
- Reading a v4 notebook, or carding one, imports neither nbformat nor jsonschema (whose format checkers load grammars
  for a second or more); a v3 notebook is upgraded through nbformat.
- Grading lists only the AST nodes it counts (`graded_nodes`), skipping the inside of statements that cannot hold one:
  exactly the definitions, loops, `if`s, `try`s, list comprehensions and lambdas of the whole tree, in `ast.walk`
  order (generated code, the package's and the standard library's modules, hypothesis).
- The faster per-line helpers (non-blank lines, `#|` directives, markdown headings, plain heading text) give the old
  code's results on any text (hypothesis, whitespace of every kind included).
"""
import ast, json, os, re, subprocess, sys, time
from datetime import datetime
from pathlib import Path

import pytest
pytestmark = pytest.mark.slow
from hypothesis import HealthCheck, given, settings, strategies as st

from tinytorch_progress.errors import TitoError
from tinytorch_progress.safe_read import read_regular_file
from tinytorch_progress.notebooks import MAX_NOTEBOOK_LINES, read_notebook
from tinytorch_progress.report.grading import analyze, report_card_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gen_course import make_course  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden_report_cards.json"
NOW = datetime(2026, 1, 1, 12, 0, 0)
TITO = [sys.executable, "-m", "tinytorch_progress.cli.main"]


@pytest.mark.parametrize("fmt", ["ipynb", "py"])
def test_cards_equal_the_golden_cards_of_the_old_code(tmp_path, fmt):
    from tinytorch_progress.schemas import validate
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))[fmt]
    make_course(tmp_path, fmt, len(golden))
    cards = [report_card_for(p, tmp_path, NOW).to_json() for p in sorted((tmp_path / "modules").iterdir())]
    assert cards == golden
    for c in cards:
        assert validate(c, "report-card").to_json() == c
        assert list(validate(c, "report-card").to_json()) == list(c)          # same keys, same order as the model


@pytest.mark.parametrize("fmt", ["py", "ipynb"])
def test_cli_json_equals_the_golden_cards(tmp_path, fmt):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))[fmt]
    make_course(tmp_path, fmt, len(golden))
    r = subprocess.run(TITO + ["--root", str(tmp_path), "report", "--all", "--json", "--no-save"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert [{**c, "analysis_date": None} for c in got] == [{**c, "analysis_date": None} for c in golden]


def test_cli_json_of_an_odd_number_of_modules_equals_grading_each_alone(tmp_path):
    make_course(tmp_path, "ipynb", 7)
    r = subprocess.run(TITO + ["--root", str(tmp_path), "report", "--all", "--json", "--no-save"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    alone = [report_card_for(p, tmp_path, NOW).to_json() for p in sorted((tmp_path / "modules").iterdir())]
    assert [{**c, "analysis_date": None} for c in json.loads(r.stdout)] == [{**c, "analysis_date": None} for c in alone]


@pytest.mark.skipif(not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"), reason="needs /dev/zero and FIFOs")
@pytest.mark.parametrize("name,target", [("zero.ipynb", "/dev/zero"), ("random.py", "/dev/urandom"), ("fifo.ipynb", None)])
def test_special_files_are_refused_at_once(tmp_path, name, target):
    p = tmp_path / name
    if target: p.symlink_to(target)
    else: os.mkfifo(p)
    t = time.perf_counter()
    r = subprocess.run(TITO + ["report", "--no-save", str(p)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "not a regular file" in r.stderr and name in r.stderr
    assert time.perf_counter() - t < 10


def test_read_regular_file_is_bounded(tmp_path):
    p = tmp_path / "a.ipynb"
    p.write_bytes(b"x" * 100)
    assert read_regular_file(p, 100) == b"x" * 100
    with pytest.raises(TitoError, match="too large"): read_regular_file(p, 99)
    with pytest.raises(TitoError, match="no such file"): read_regular_file(tmp_path / "gone.ipynb", 10)
    with pytest.raises(TitoError, match="is a folder"): read_regular_file(tmp_path, 10)


@pytest.mark.parametrize("fmt", ["py", "ipynb"])
def test_a_notebook_of_three_million_lines_is_refused_before_any_work(tmp_path, fmt):
    lines = 3_000_000
    p = tmp_path / f"huge.{fmt}"
    if fmt == "py": p.write_text("# %%\n" + "x = 1\n" * lines)
    else:
        p.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                            "source": "x = 1\n" * lines}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    t = time.perf_counter()
    with pytest.raises(TitoError, match=f"too long to grade .*at most {MAX_NOTEBOOK_LINES}"): analyze(p)
    assert time.perf_counter() - t < 10                                   # the analysis alone takes minutes


def test_headings_built_to_backtrack_are_graded_at_once(tmp_path):
    nasty = ["## x" + " " * 3000 + "y", "# a" + "a" * 5000 + ":", "## Step" + " " * 3000 + "#",
             "word" * 2000 + " : B", "x" + " " * 3000 + "- y", "## " + "a " * 2000 + "and", "## " + "[" * 20000,
             "## " + "<" * 20000, "## [" + "a" * 20000 + "](", "##" + " " * 3000 + "step" + " " * 3000]
    p = tmp_path / "nasty.py"
    p.write_text("\n".join("# %% [markdown]\n# " + n for n in nasty) + "\n")
    t = time.perf_counter()
    analyze(p)
    assert time.perf_counter() - t < 2


def test_a_v4_notebook_is_read_and_carded_without_nbformat(tmp_path):
    make_course(tmp_path, "ipynb", 1)
    code = ("import sys; from tinytorch_progress.report.grading import analyze; analyze(sys.argv[1]); "
            "print(sorted(m for m in ('nbformat', 'jsonschema', 'jupytext') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code, str(next((tmp_path / "modules").iterdir()))], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "[]", r.stderr


# What grading counts in a code cell: definitions, loops, `if`, `try`, list comprehensions and lambdas.
COUNTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For, ast.While, ast.If, ast.Try, ast.ListComp, ast.Lambda)
CODE_PIECES = ["x = a * b + f(c)", "y = [i for i in range(3)]", "f = lambda a: a", "z = (1 +\n  [j for j in x])", "s = 'for'",
               's = """\nlambda\n"""', "a = b; c = [d for d in e]", "if x:\n    y = [k for k in x]\nelif q:\n    z = lambda: 0",
               "def g(q=lambda: 1):\n    return [w for w in q()]", "class C:\n    v = [u for u in ()]\n    def test_m(self): pass",
               "try:\n    pass\nexcept E as e:\n    h = lambda: e\nfinally:\n    t = [1]", "with open(f) as fh:\n    data = [l for l in fh]",
               "for i in x:\n    pass\nelse:\n    o = [p for p in i]", "while x:\n    break", "m = {k: v for k, v in x}", "x = \\\n  [n for n in y]",
               "@dec([lambda: 1 for _ in x])\ndef f(): pass", "match x:\n    case [a, *_] if [b for b in a]:\n        r = lambda: a",
               "%matplotlib inline", "!ls [x for x]", "print(f'{[i for i in x]}')", "async def test_af():\n    return [i async for i in ai]",
               "assert [a for a in x], 'msg'", "del x[[i for i in y][0]]", "import os", "raise E(lambda: 1)", "form = 1  # for",
               'def test_x():\n    "for"\n    xs = [\n        1 for _ in ()]', "class Test_(object): w = lambda: [k for k in ()]"]


def _assert_graded_nodes_hold_everything_counted(src: str):
    from tinytorch_progress.report.metrics import ast_nodes, graded_nodes, parse_code
    tree = parse_code(src)
    if tree is None: return
    assert graded_nodes(tree, src) == [n for n in ast_nodes(tree) if isinstance(n, COUNTED)], src


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(CODE_PIECES), max_size=12).map("\n".join))
def test_graded_nodes_keep_every_counted_node_in_order(src):
    _assert_graded_nodes_hold_everything_counted(src)


def test_graded_nodes_keep_every_counted_node_on_real_code(tmp_path):
    make_course(tmp_path, "ipynb", 20)
    sources = [c.source for p in sorted((tmp_path / "modules").glob("*/*.ipynb")) for c in read_notebook(p).code_cells]
    sources += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tinytorch_progress").rglob("*.py"))]
    sources += [p.read_text(encoding="utf-8") for p in sorted(Path(ast.__file__).parent.glob("*.py"))[:80]]
    assert len(sources) > 500
    for src in sources: _assert_graded_nodes_hold_everything_counted(src)


# The patterns of 85cabdf, which backtrack on long runs: the linear rewrites must give the same results on short input.
OLD = {"atx": re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$"),
       "split": re.compile(r"\s*(?::|\s[-–—]\s|[–—|()\[\],;/?!&]|\s+(?:and|vs\.?|versus)\s+)\s*", re.I),
       "numbering": re.compile(r"^(?:(?:step|part|section|module|lesson|chapter|unit|exercise|task|problem|milestone|stage|phase)"
                               r"\s*#?\s*\d+[a-z]?\b\.?|\d+(?:\.\d+)*[.)]?(?=\s|$))\s*[:.)\-–—]*\s*", re.I),
       "defined": re.compile(r"(\w+)\s+is\s+defined\s+as"), "colon": re.compile(r"(\w+)\s*:\s*[A-Z]"),
       "link": re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), "tag": re.compile(r"<[^>]+>")}
PIECES = ["and", "vs", "vs.", "versus", " ", "  ", "-", " - ", ":", "#", "##", "Step", "1.", "2)", "a", "B", "Tensor", "\t",
          "**", "is defined as", "is", "\u00a0", "–", "—", "3a", "#3", "é", "[", "]", "(", ")", "](", "!", "<", ">", "<b>"]


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join))
def test_linear_rewrites_match_the_old_patterns(t):
    from tinytorch_progress.report import concepts as rc
    m = OLD["atx"].match(t)
    assert rc._atx(t) == (m.group(1) if m else None)
    assert rc._SPLIT.split(t) == OLD["split"].split(t)
    assert rc._NUMBERING.sub("", t, count=1) == OLD["numbering"].sub("", t, count=1)
    assert rc._defined_words(t, *rc._DEFINED_AS[0]) == OLD["defined"].findall(t)
    assert rc._defined_words(t, *rc._DEFINED_AS[1]) == OLD["colon"].findall(t)
    assert rc._unlink(t) == OLD["link"].sub(r"\1", t) and rc._untag(t) == OLD["tag"].sub(" ", t)


# The per-line helpers of 85cabdf, as they were: the faster ones must give the same results on any text.
def _old_headings(text):
    from tinytorch_progress.report.concepts import _atx
    out, fence = [], None
    for line in text.split("\n"):
        s = line.strip()
        m = re.match(r"^(`{3,}|~{3,})", s)
        if m:
            if fence is None: fence = m.group(1)[0]
            elif s.startswith(fence * 3): fence = None
            continue
        if fence is None and (h := _atx(line)) is not None: out.append(h)
    return out


def _old_plain(h):
    import unicodedata
    from tinytorch_progress.report.concepts import _unlink, _untag
    h = _untag(_unlink(h)).replace("`", "").replace("*", "")
    return "".join(ch if (unicodedata.category(ch)[0] in "LN" or ch in " -_:'.,/&()+–—|;?!") else " " for ch in h)


LINE_PIECES = ["\n", " ", "   ", "    ", "\t", "\x0b", "\x0c", "\x1c", "\u2028", "\u00a0", "\u3000", "\r", "#", "##", "#|", "# |",
               "#| export", "```", "~~~", "````", "`", "~", "x", "Tensor", "é", "😀", "*", "[a](b)", "<b>", "$", "\\", "2.1", "-", "'''",
               ":", "B", "is", "this", " is defined as", "defined as"]


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(LINE_PIECES), max_size=24).map("".join))
def test_faster_line_helpers_match_the_old_ones(t):
    from tinytorch_progress.report import concepts as rc, metrics
    assert metrics.nonblank_lines(t) == sum(1 for l in t.split("\n") if l.strip())
    assert metrics.directives(t) == [l.strip() for l in t.split("\n") if l.strip().startswith("#|")]
    assert rc.markdown_headings(t) == _old_headings(t)
    assert rc.plain_text(t) == _old_plain(t)
    assert rc._defined_words(t, *rc._DEFINED_AS[0]) == OLD["defined"].findall(t)
    assert rc._defined_words(t, *rc._DEFINED_AS[1]) == OLD["colon"].findall(t)
