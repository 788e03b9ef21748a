"""Fuzzing the readers of progress files (issue 19, "Keep them out"): each format's example (the spec's, or one the
package itself writes) is mutated — fields replaced by any JSON value, dropped or added, keys repeated, text
re-encoded, cut short — and written where the format lives.
- `tito validate` (in process, with internal errors raised): never a traceback; an `OK` file is one the models read
  (strictly: no repeated key, no contradiction); every `ERROR` is one line naming the file.
- the workspace loader (`Workspace.read`, `Workspace.config`) for the files a workspace holds: never an exception but a
  one-line `TitoError` naming the file; a file read without a warning is one the models read.
The replies `tito sync` gets are fuzzed in test_sync_fuzz.py.
"""
import json, tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, strategies as st

from conftest import spec_json_blocks, tito_main
from fuzzing import FUZZ, JSON, mutated
from tinytorch_progress.errors import FormatError, TitoError
from tinytorch_progress.schemas import FORMATS, detect_format, load
from tinytorch_progress.store import Workspace
from tinytorch_progress.config import read_config

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------- seeds: one valid example of every format

def _seeds() -> dict:
    by_fmt = {detect_format("x.json", b): b for b in spec_json_blocks()}
    export = by_fmt["export"]
    by_fmt["upload"] = {k: v for k, v in export.items() if k != "timestamp"}
    by_fmt["leaderboard"] = {"leaderboard": [{"user_id": "ada", "username": "ada", "modules_completed": 3,
                                              "milestones_completed": 1, "rank": 1}]}
    by_fmt["curriculum"] = json.loads((Path(__file__).parents[1] / "tinytorch_progress" / "curriculum.json").read_text())
    return by_fmt


SEEDS = _seeds()
WHERE = {"root-progress": "progress.json", "progress": ".tito/progress.json", "milestones": ".tito/milestones.json",
         "config": ".tito/config.json", "report-card": "instructor/reports/01_tensor_report_card_20250101.json",
         "performance": "tests/performance/performance_results/14_profiling_performance_results.json",
         "curriculum": ".tito/curriculum.json", "export": "export.json", "upload": "upload.json",
         "leaderboard": "leaderboard.json"}
WORKSPACE_FILES = ("root-progress", "progress", "milestones", "config")


def test_every_format_has_a_valid_seed():
    assert set(SEEDS) == set(FORMATS) == set(WHERE)
    for fmt, seed in SEEDS.items():
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / WHERE[fmt]; p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(seed))
            assert load(p, fmt, unique_keys=True) is not None, fmt


# ---------------------------------------------------------------- mutations

@st.composite
def encoded(draw, value):
    "JSON text of `value`, in one of the ways a file can hold it (some of them wrong)."
    how = draw(st.sampled_from(["indent", "compact", "ascii", "bom", "utf16", "dup-key", "dup-nested", "crlf", "cut", "junk"]))
    text = json.dumps(value, indent=None if how == "compact" else 2, ensure_ascii=how == "ascii")
    if how == "dup-key" and isinstance(value, dict) and value:
        text = "{" + json.dumps(next(iter(value))) + ": 0,\n" + text[1:]
    if how == "dup-nested" and isinstance(value, dict):
        text = text[:-1] + (', ' if value else '') + '"nested": {"k": 1,\n "k": 2}}'
    if how == "crlf": text = text.replace("\n", "\r\n")
    if how == "cut": text = text[:draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "junk": text = draw(st.sampled_from(["NaN", "[" * 5000, "1" * 5000, "{\"a\": Infinity}", "\ufeff\ufeff{}", "}"])) + text
    if how == "bom": return b"\xef\xbb\xbf" + text.encode()
    if how == "utf16": return text.encode("utf-16")
    return text.encode("utf-8", "surrogatepass")


def file_of(fmt):
    return st.one_of(mutated(SEEDS[fmt]), JSON).flatmap(encoded)


def write(root: Path, fmt: str, raw: bytes) -> Path:
    p = root / WHERE[fmt]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(raw)
    return p


# ---------------------------------------------------------------- tito validate

def run_validate(*args) -> tuple[int, str, str]:
    p = tito_main("validate", *args)
    return p.returncode, p.stdout, p.stderr


def models_read_strictly(p: Path, fmt: str) -> bool:
    "What an OK from `tito validate` promises: the models read the file, with no repeated key and no contradiction."
    try: m = load(p, fmt, unique_keys=True)
    except FormatError: return False
    return not getattr(m, "consistency_errors", list)()


@pytest.fixture
def debug(monkeypatch):
    monkeypatch.setenv("TITO_DEBUG", "1")  # an internal error raises instead of printing its one line


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_validate_never_crashes_and_never_accepts_what_the_models_refuse(fmt, debug):
    @FUZZ
    @given(file_of(fmt), st.booleans())
    @example(json.dumps(SEEDS[fmt]).encode(), False)
    def run(raw, name_the_format):
        with tempfile.TemporaryDirectory() as d:
            p = write(Path(d), fmt, raw)
            rc, out, err = run_validate(*(["--format", fmt] if name_the_format else []), p)
            assert err == "" and rc in (0, 1), (rc, err)
            lines = out.splitlines()
            if rc == 0:  # unnamed, a changed file may be recognised as another format (an export without timestamp: an upload)
                assert len(lines) == 1 and lines[0].startswith(f"OK {p} (") and lines[0].endswith(")"), out
                found = lines[0][len(f"OK {p} ("):-1]
                assert found == fmt or not name_the_format, out
                assert models_read_strictly(p, found), f"validate accepted what the models refuse: {raw[:300]!r}"
            else:
                assert lines and all(line.startswith(f"ERROR {p}: ") and len(line) < 1000 for line in lines), out[:2000]
                assert not models_read_strictly(p, fmt) or not name_the_format and detect_format(p, None) != fmt, raw[:300]
    run()


def test_validate_reports_each_contradiction_of_a_milestones_file(tmp_path):
    p = write(tmp_path, "milestones", json.dumps({"completed_milestones": ["03", "03"], "completion_dates": {},
                                                  "unlocked_milestones": ["01"], "unlock_dates": {"01": "2025-11-15T10:00:00"},
                                                  "total_unlocked": 5}).encode())
    rc, out, _ = run_validate(p)
    assert rc == 1 and out.splitlines() == [
        f"ERROR {p}: completed_milestones: milestone 03 is listed 2 times",
        f"ERROR {p}: completed_milestones: milestone 03 is completed but not in unlocked_milestones",
        f"ERROR {p}: completion_dates: no date for completed milestone 03",
        f"ERROR {p}: total_unlocked: 5 but unlocked_milestones lists 1"]
    ws = Workspace(tmp_path)  # the store still reads it: a slip in a student's file must not lock them out
    assert ws.read().milestones_completed.keys() == {"03"}


# ---------------------------------------------------------------- the workspace loader

def one_line_naming(e: Exception, p: Path) -> bool:
    s = str(e)
    return "\n" not in s and (str(p) in s or p.name in s)


@pytest.mark.parametrize("fmt", WORKSPACE_FILES)
def test_the_workspace_loader_reads_or_says_which_file_in_one_line(fmt):
    @FUZZ
    @given(file_of(fmt))
    @example(json.dumps(SEEDS[fmt]).encode())
    def run(raw):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d); (root / ".tito").mkdir()
            p = write(root, fmt, raw)
            ws = Workspace(root)
            try:
                if fmt == "config": read_config(ws)
                else: ws.read()
            except TitoError as e:
                assert one_line_naming(e, p), str(e)
                return
            if fmt != "config": p.write_bytes(raw)  # a recovery may have replaced it: judge the file as written
            quiet = not ws.warnings and not any(ws.aside.values()) and not any(ws.renamed.values())
            if quiet:
                try: load(p, fmt)
                except FormatError as e: pytest.fail(f"the store read what the models refuse ({e}): {raw[:300]!r}")
            for w in ws.warnings: assert "\n" not in w, w
    run()
