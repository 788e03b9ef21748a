"""Report cards stay the same while getting faster, and hostile inputs are refused before any work.

- Cards of a generated TinyTorch-size course (benchmarks/gen_course.py) in both formats equal golden cards made by the
  code of commit 85cabdf (tests/data/golden_report_cards.json), key for key and in the same order, and the format's
  pydantic model accepts them unchanged.
- Special files (a link to /dev/zero, /dev/urandom as .py, a FIFO named .ipynb) are one-line errors at once.
- A notebook of 3 million lines is refused before it is analysed.
- A markdown heading built to make a backtracking regex explode is graded in linear time.
- Importing nbformat through our reader loads none of the libraries of jsonschema's optional format checkers (no
  rfc3987_syntax grammars, no arrow) nor traitlets' logging, and jsonschema still validates every format those libraries
  check exactly as it does without us, with the same checkers and exceptions; if a stand-in ever cost a checker, nbformat is
  imported again without them.
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
from hypothesis import HealthCheck, given, settings, strategies as st

from tinytorch_progress.errors import TitoError
from tinytorch_progress.safe_read import read_regular_file
from tinytorch_progress.notebooks import MAX_NOTEBOOK_LINES, read_notebook
from tinytorch_progress.report_card import analyze, report_card_for

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


@pytest.mark.parametrize("fmt", ["py", "ipynb"])     # four modules: graded by two processes
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


STOOD_IN = ["rfc3987_syntax", "rfc3986_validator", "rfc3339_validator", "webcolors", "uri_template", "arrow", "traitlets.log"]

PROBE = """
import json, sys, types
STOOD_IN = %r
if sys.argv[1] != "plain":
    from tinytorch_progress import notebooks
    if sys.argv[1] == "broken":   # a checker that does not register: nbformat must be imported again, plainly
        notebooks._STAND_INS["webcolors"] = ((), "no-such-format", None)
    notebooks._import_nbformat()
    loaded = [m for m in STOOD_IN if m in sys.modules]
    assert "nbformat" in sys.modules and (loaded if sys.argv[1] == "broken" else not loaded), loaded
    assert not any(type(m).__name__ == "_LazyModule" for m in sys.modules.values())
import jsonschema
fmt_module = sys.modules["jsonschema._format"]
if sys.argv[1] == "broken": assert type(fmt_module.webcolors) is types.ModuleType
values = ["http://example.com/a?b#c", "ftp://x", "http://例え.テスト/パス", "//host/p", "a:b", "not an iri", " ", "",
          "http://[::1]:80/", "mailto:someone@example.org", "relative/path", "#frag", "http://exa mple.com",
          "2024-01-02T03:04:05Z", "2024-13-02T03:04:05Z", "2024-01-02 03:04:05", "2024-01-02t03:04:05.5+01:00",
          "03:04:05Z", "25:00:00Z", "03:04:05", "red", "#fff", "#FFFFFF", "#ggg", "notacolor", "http://x/{a}",
          "http://x/{a", "{+path}/x{?q*}", "P1Y", "P1", "PT1H30M", "P", "1Y", "P1.5D", "P1W", "P1Y2W", 3, None]
formats = ["iri", "iri-reference", "uri", "uri-reference", "date-time", "time", "color", "uri-template", "duration"]
drafts = [jsonschema.Draft3Validator, jsonschema.Draft4Validator, jsonschema.Draft6Validator, jsonschema.Draft7Validator,
          jsonschema.Draft201909Validator, jsonschema.Draft202012Validator]
out, checker = {}, jsonschema.FormatChecker()
for fmt in formats:
    for draft in drafts:
        for name, fc in ((draft.__name__, draft.FORMAT_CHECKER), ("all formats", checker)):
            v = draft({"format": fmt}, format_checker=fc)
            out[f"{fmt} {name}"] = [[e.message for e in v.iter_errors(x)] for x in values]
raises = {k: [f"{r.__module__}.{r.__qualname__}" for r in (rs if isinstance(rs, tuple) else (rs,))]
          for k, (_, rs) in checker.checkers.items()}
print(json.dumps({"checkers": sorted(checker.checkers), "raises": raises, "results": out,
                  "drafts": {d.__name__: sorted(d.FORMAT_CHECKER.checkers) for d in drafts}}))
""" % STOOD_IN


def _probe(which):
    r = subprocess.run([sys.executable, "-c", PROBE, which], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_jsonschema_validates_the_stood_in_formats_exactly_as_without_us():
    pytest.importorskip("rfc3987_syntax"); pytest.importorskip("isoduration"); pytest.importorskip("webcolors")
    ours, plain = _probe("ours"), _probe("plain")
    assert {"iri", "iri-reference", "uri", "date-time", "color", "uri-template", "duration"} <= set(plain["checkers"])
    assert ours == plain
    for fmt in ("iri", "uri", "date-time", "color", "uri-template", "duration"):   # the checkers really check
        res = plain["results"][f"{fmt} all formats"]
        assert any(res) and not all(res), fmt


def test_a_checker_lost_to_a_stand_in_means_importing_again_without_them():
    pytest.importorskip("webcolors")
    assert _probe("broken") == _probe("plain")


def test_the_stand_ins_leave_and_the_real_modules_load_on_first_use():
    code = ("import sys, importlib; from tinytorch_progress.notebooks import _import_nbformat; _import_nbformat(); "
            f"names = {STOOD_IN!r}; assert not [n for n in names if n in sys.modules]; "
            "ms = [importlib.import_module(n) for n in names]; assert all(type(m).__name__ == 'module' and m.__file__ for m in ms); "
            "import rfc3987_syntax; assert callable(rfc3987_syntax.is_valid_syntax); print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "ok", r.stderr


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
    from tinytorch_progress.report_card import ast_nodes, graded_nodes, parse_code
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
    from tinytorch_progress import report_card as rc
    m = OLD["atx"].match(t)
    assert rc._atx(t) == (m.group(1) if m else None)
    assert rc._SPLIT.split(t) == OLD["split"].split(t)
    assert rc._NUMBERING.sub("", t, count=1) == OLD["numbering"].sub("", t, count=1)
    assert rc._defined_words(t, *rc._DEFINED_AS[0]) == OLD["defined"].findall(t)
    assert rc._defined_words(t, *rc._DEFINED_AS[1]) == OLD["colon"].findall(t)
    assert rc._unlink(t) == OLD["link"].sub(r"\1", t) and rc._untag(t) == OLD["tag"].sub(" ", t)


# The per-line helpers of 85cabdf, as they were: the faster ones must give the same results on any text.
def _old_headings(text):
    from tinytorch_progress.report_card import _atx
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
    from tinytorch_progress.report_card import _unlink, _untag
    h = _untag(_unlink(h)).replace("`", "").replace("*", "")
    return "".join(ch if (unicodedata.category(ch)[0] in "LN" or ch in " -_:'.,/&()+–—|;?!") else " " for ch in h)


LINE_PIECES = ["\n", " ", "   ", "    ", "\t", "\x0b", "\x0c", "\x1c", "\u2028", "\u00a0", "\u3000", "\r", "#", "##", "#|", "# |",
               "#| export", "```", "~~~", "````", "`", "~", "x", "Tensor", "é", "😀", "*", "[a](b)", "<b>", "$", "\\", "2.1", "-", "'''",
               ":", "B", "is", "this", " is defined as", "defined as"]


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(LINE_PIECES), max_size=24).map("".join))
def test_faster_line_helpers_match_the_old_ones(t):
    from tinytorch_progress import report_card as rc
    assert rc.nonblank_lines(t) == sum(1 for l in t.split("\n") if l.strip())
    assert rc.directives(t) == [l.strip() for l in t.split("\n") if l.strip().startswith("#|")]
    assert rc.markdown_headings(t) == _old_headings(t)
    assert rc._plain(t) == _old_plain(t)
    assert rc._defined_words(t, *rc._DEFINED_AS[0]) == OLD["defined"].findall(t)
    assert rc._defined_words(t, *rc._DEFINED_AS[1]) == OLD["colon"].findall(t)


def test_an_in_process_report_leaves_the_collector_as_it_found_it(tmp_path):
    "The fork freezes the collector for the child's sake; a caller that is not the `tito` script gets it back unfrozen."
    make_course(tmp_path, "ipynb", 6)
    code = ("import contextlib, gc, io, sys; from tinytorch_progress.cli import main as cli\n"
            "with contextlib.redirect_stdout(io.StringIO()): rc = cli.main(['--root', sys.argv[1], 'report', '--all', '--json', '--no-save'])\n"
            "print(rc, gc.get_freeze_count())")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.stdout.split() == ["0", "0"], r.stderr
