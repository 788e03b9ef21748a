"""The store's fast decoder against the pydantic models (issue 17 "Guards").

`tito status` reads the three progress files without pydantic: `Workspace.load_one` parses the bytes with `json` and
decodes them with `store.decode`, and only falls back to the models (`schemas.parse_json` + `schemas.validate`) when
that fails. The speed is only safe if the fast decoder never accepts what the models reject, and when it accepts,
reads the same thing. Checked on the spec's examples, on the fault suite's corpus of malformed files and on
generated variants (hypothesis):

- fast accepts  =>  pydantic accepts, with the same modules, milestones, dates (as local times), parts and unknown fields;
- pydantic rejects  =>  fast does not accept (the contrapositive, reported separately because it is the dangerous half).

The fast side is run through the real `Workspace.load_one` with the model path blocked, so the test follows whatever
glue the store puts between the bytes and `decode`. The one piece of glue both paths share — module entries that carry
a name (`"02_tensor"`, `"tensor"`) read by name against the course (`store.by_name`) — is applied on the model side too.
"""
import json, tempfile
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from conftest import spec_json_blocks
from test_store_faults import LOCATION, corpus_cases
from tinytorch_progress import schemas
from tinytorch_progress.errors import FormatError
from tinytorch_progress.schemas import detect_format
from tinytorch_progress.curriculum import load_curriculum
from tinytorch_progress.store import FILES, Workspace, by_name

FAST_FORMATS = tuple(FILES)  # the files `tito status` reads: root-progress, progress, milestones


class SlowPath(Exception):
    "Raised instead of entering the pydantic fallback: the fast decoder did not accept the file."


def fast(fmt: str, raw: bytes):
    "What the store's fast path reads from `raw` (a dict of decoded parts), or None if it hands over to the models."
    with tempfile.TemporaryDirectory() as d, ExitStack() as stack:
        ws = Workspace(Path(d))
        p = ws.path(fmt); p.parent.mkdir(parents=True, exist_ok=True); p.write_bytes(raw)
        for name in ("parse_json", "read_json", "validate", "load"):
            stack.enter_context(mock.patch.object(schemas, name, side_effect=SlowPath))
        try: return ws.load_one(fmt)
        except SlowPath: return None


def local(d):
    "A timestamp as the store keeps it: local naive time (a marker the fast side never equals if there is none)."
    if d is None or not d.tzinfo: return d
    try: return d.astimezone().replace(tzinfo=None)
    except OverflowError: return ("no local time", d.isoformat())


def slow(fmt: str, raw: bytes):
    "What the pydantic models read from `raw`, in the store's normalised parts, or None if they reject it."
    numbers = lambda: {m.slug: m.number for m in load_curriculum().modules}
    try: m = schemas.validate(by_name(fmt, schemas.parse_json(raw, "x.json"), numbers)[0], fmt, "x.json")
    except FormatError: return None
    extras = dict(m.model_extra or {})
    if fmt == "root-progress":
        return dict(started=list(m.started_modules), completed=list(m.completed_modules), last_worked=m.last_worked,
                    last_completed=m.last_completed, last_updated=local(m.last_updated), extras=extras)
    if fmt == "progress":
        return dict(completed=list(m.completed_modules), dates={k: local(v) for k, v in m.completion_dates.items()}, extras=extras)
    return dict(unlocked=list(m.unlocked_milestones), unlock_dates={k: local(v) for k, v in m.unlock_dates.items()},
                completed=list(m.completed_milestones), dates={k: local(v) for k, v in m.completion_dates.items()},
                achievements=list(m.achievements), part_results=m.to_json()["part_results"], extras=extras)


def check(fmt: str, raw: bytes, what: str = ""):
    f, s = fast(fmt, raw), slow(fmt, raw)
    if f is None: return
    assert s is not None, f"{fmt} {what}: the fast decoder accepts what the models reject: {raw[:300]!r}"
    assert f == s, f"{fmt} {what}: the fast decoder reads {f}\nthe models read {s}\nfrom {raw[:300]!r}"


def seeds() -> dict:
    "The spec's example of each fast format."
    return {detect_format("x.json", d): d for d in spec_json_blocks() if detect_format("x.json", d) in FAST_FORMATS}


def enc(d) -> bytes: return json.dumps(d, indent=2, ensure_ascii=False).encode()


# ---------------------------------------------------------------- seeds and corpus
@pytest.mark.parametrize("fmt", FAST_FORMATS)
def test_seed_examples_take_the_fast_path_and_agree(fmt):
    raw = enc(seeds()[fmt])
    assert fast(fmt, raw) is not None, f"the spec's {fmt} example is not read by the fast decoder"
    check(fmt, raw, "spec example")


CORPUS = [(fmt, name, content) for fmt, name, content in corpus_cases() if fmt in FAST_FORMATS and content != "DIR"]


@pytest.mark.parametrize("fmt,name,content", CORPUS, ids=[f"{f}-{n}" for f, n, _ in CORPUS])
def test_bad_file_corpus_is_never_accepted_by_the_fast_decoder_alone(fmt, name, content):
    assert slow(fmt, content) is None, f"corpus case {fmt}/{name} is valid for the models: not a bad file"
    assert fast(fmt, content) is None, f"{fmt}/{name}: the fast decoder accepts a file the models reject"


def test_the_corpus_covers_the_fast_formats():
    assert {f for f, *_ in CORPUS} == set(FAST_FORMATS) and len(CORPUS) >= 45
    assert set(FAST_FORMATS) <= set(LOCATION)


# ---------------------------------------------------------------- generated variants
MISSING = object()
modules = st.one_of(st.integers(-2, 1002), st.sampled_from([0, 1, 2, 20, 999, 1000, True, False, None, 1.0, 2.5, 1e400, -0.0]),
                    st.sampled_from(["01", "1", "001", "01_tensor", "module_01", "m01", " 01 ", "1.0", "", "x", "0", "1000",
                                     "01-tensor", "MODULE_01", "\uff11", "\u0661", "1\n", "01_Tensor", "١", "tensor", "02_tensor", "01_setup"]),
                    st.text(alphabet="0123456789_m-. ", max_size=5))
stamps = st.one_of(st.sampled_from(["2025-01-15T10:30:00", "2025-01-15T10:30:00Z", "2025-01-15T10:30:00+05:30",
                                    "2025-01-15T10:30:00.123456", "2025-01-15", "2025-02-30T00:00:00", " 2025-01-15T10:30:00 ",
                                    "2025-01-15 10:30:00", "20250115T103000", "2025-01-15T10:30:00z", "yesterday", "",
                                    "2025-01-15T10:30:00-00:00", "2025-W03", "0001-01-01T00:00:00+01:00"]),
                   st.sampled_from([None, 0, 12345, 1.5, True, [], {}]),
                   st.datetimes().map(lambda d: d.isoformat()))
versions = st.sampled_from(["1.0", "1", "1.1", "1.2", "0", "0.9", "2.0", "99.0", "1.x", "01.0", " 1.0", "1.0.0", "", "x",
                            1, 1.0, 2, 0, True, None, [], "1e0", "+1.0", "-1.0", "\uff11.0"])
counts = st.one_of(st.integers(-3, 100_003), st.sampled_from([True, False, None, 1.0, 1.5, "3", [], 1e400]))
parts = st.fixed_dictionaries({"part": st.sampled_from(["1", "all", "", 1]), "passed": st.sampled_from([True, False, 1, "yes"]),
                               "date": stamps}, optional={"duration_s": st.sampled_from([0, 1.5, -1, "2"]), "message": st.sampled_from(["", "ok", 3])})
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=6)


def maybe(s, wrong=json_values):
    "A field: missing, a plausible value, or any JSON value."
    return st.one_of(st.just(MISSING), s, wrong)


def lists_of(s): return st.lists(s, max_size=4)
def dates_of(keys): return st.dictionaries(keys, stamps, max_size=3)


FIELDS = {
    "root-progress": {"started_modules": lists_of(modules), "completed_modules": lists_of(modules), "last_worked": modules,
                      "last_completed": modules, "last_updated": stamps},
    "progress": {"version": versions, "completed_modules": lists_of(modules), "completion_dates": dates_of(modules.map(str))},
    "milestones": {"version": versions, "completed_milestones": lists_of(modules), "completion_dates": dates_of(modules.map(str)),
                   "unlocked_milestones": lists_of(modules), "unlock_dates": dates_of(modules.map(str)), "total_unlocked": counts,
                   "achievements": st.lists(json_values, max_size=2),
                   "part_results": st.one_of(st.just({}), st.dictionaries(modules.map(str), st.lists(parts, max_size=2), max_size=2))},
}
extras = st.dictionaries(st.sampled_from(["theme", "notes", "x", "achievements_v2", "started_modules", "version"]), json_values, max_size=2)


@st.composite
def variant(draw, fmt):
    "A file of `fmt`: the spec's example with some fields replaced, dropped or added, in one of several encodings."
    d = dict(seeds()[fmt])
    for k, s in FIELDS[fmt].items():
        if draw(st.booleans()):
            v = draw(maybe(s))
            if v is MISSING: d.pop(k, None)
            else: d[k] = v
    for k, v in draw(extras).items(): d.setdefault(k, v)
    if draw(st.booleans()): d = dict(reversed(list(d.items())))
    how = draw(st.sampled_from(["indent", "compact", "ascii", "bom", "utf16", "utf32", "dup-key", "crlf"]))
    text = json.dumps(d, indent=None if how == "compact" else 2, ensure_ascii=how == "ascii")
    if how == "dup-key" and d: text = "{" + json.dumps(next(iter(d))) + ": 0, " + text[1:] if text != "{}" else text
    if how == "crlf": text = text.replace("\n", "\r\n")
    if how == "bom": return b"\xef\xbb\xbf" + text.encode()
    if how in ("utf16", "utf32"): return text.encode(how)
    return text.encode()


GEN = settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", FAST_FORMATS)
def test_generated_variants(fmt):
    @GEN
    @given(variant(fmt))
    @example(b'{"version": "1.x"}')                              # a version the models cannot read
    @example(b'{"version": "1.0", "total_unlocked": -1}')         # counts run from 0 to 100000
    @example(b'{"version": "1.0", "total_unlocked": 100001}')
    @example(b'{"version": "1.0", "part_results": []}')           # an empty list is not an object
    @example(json.dumps({"version": "1.0"}).encode("utf-16"))    # the models read UTF-8 only
    @example(b'{"version": "1.0", "completed_modules": ["x", "02_tensor", "1_m"], "completion_dates": {"tensor": "2025-01-15T10:30:00"}}')
    @example(b'{"started_modules": ["01_setup", "tensor"], "last_worked": "01_setup", "last_updated": "0001-01-01T00:00:00+01:00"}')
    def run(raw):
        check(fmt, raw, "generated")
    run()
