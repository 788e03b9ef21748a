"""Report cards stay the same while getting faster, and hostile inputs are refused before any work.

- Cards of a generated TinyTorch-size course (benchmarks/gen_course.py) in both formats equal golden cards made by the
  code of commit 85cabdf (tests/data/golden_report_cards.json), key for key and in the same order, and the format's
  pydantic model accepts them unchanged.
- Special files (a link to /dev/zero, /dev/urandom as .py, a FIFO named .ipynb) are one-line errors at once.
- A notebook of 3 million lines is refused before it is analysed.
- A markdown heading built to make a backtracking regex explode is graded in linear time.
- Importing nbformat through our reader does not build rfc3987_syntax's grammars, and jsonschema still validates the
  `iri` and `iri-reference` formats exactly as it does without us.
"""
import json, os, re, subprocess, sys, time
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tinytorch_progress.ids import TitoError
from tinytorch_progress.files import read_regular_file
from tinytorch_progress.notebooks import MAX_NOTEBOOK_LINES, read_notebook
from tinytorch_progress.report_card import analyze, report_card_for

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gen_course import make_course  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden_report_cards.json"
NOW = datetime(2026, 1, 1, 12, 0, 0)
TITO = [sys.executable, "-m", "tinytorch_progress.cli"]


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


def test_cli_json_equals_the_golden_cards(tmp_path):
    make_course(tmp_path, "py", 4)
    r = subprocess.run(TITO + ["--root", str(tmp_path), "report", "--all", "--json", "--no-save"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["py"]
    got = json.loads(r.stdout)
    assert [{**c, "analysis_date": None} for c in got] == [{**c, "analysis_date": None} for c in golden]


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


PROBE = """
import json, sys
if sys.argv[1] == "ours":
    from tinytorch_progress.notebooks import _import_nbformat
    _import_nbformat()
    assert "nbformat" in sys.modules and "rfc3987_syntax" not in sys.modules, "the grammars were built"
import jsonschema
checker = jsonschema.FormatChecker()
values = ["http://example.com/a?b#c", "ftp://x", "http://例え.テスト/パス", "//host/p", "a:b", "not an iri", " ", "",
          "http://[::1]:80/", "mailto:someone@example.org", "relative/path", "#frag", "http://exa mple.com", 3, None]
out = {}
for fmt in ("iri", "iri-reference"):
    for draft in (jsonschema.Draft7Validator, jsonschema.Draft201909Validator, jsonschema.Draft202012Validator):
        v = draft({"format": fmt}, format_checker=checker)
        out[f"{fmt} {draft.__name__}"] = [v.is_valid(x) for x in values]
print(json.dumps({"checkers": sorted(checker.checkers), "results": out}))
"""


def test_jsonschema_validates_iri_formats_exactly_as_without_us():
    pytest.importorskip("rfc3987_syntax")
    def run(which):
        r = subprocess.run([sys.executable, "-c", PROBE, which], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    ours, plain = run("ours"), run("plain")
    assert "iri" in plain["checkers"] and "iri-reference" in plain["checkers"]
    assert ours == plain
    assert any(not ok for res in plain["results"].values() for ok in res)   # the checkers really check


def test_the_stand_in_leaves_and_the_real_module_loads_on_first_use():
    code = ("import sys; from tinytorch_progress.notebooks import _import_nbformat; _import_nbformat(); "
            "assert 'rfc3987_syntax' not in sys.modules; import rfc3987_syntax; "
            "assert hasattr(rfc3987_syntax, '__file__') and callable(rfc3987_syntax.is_valid_syntax); print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "ok", r.stderr


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
    assert rc._defined_words(t, rc._DEFINED_AS[0]) == OLD["defined"].findall(t)
    assert rc._defined_words(t, rc._DEFINED_AS[1]) == OLD["colon"].findall(t)
    assert rc._unlink(t) == OLD["link"].sub(r"\1", t) and rc._untag(t) == OLD["tag"].sub(" ", t)
