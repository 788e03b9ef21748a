"""Fuzzing the client (issue 19, "Keep them out"): progress files of every format, and the replies `tito sync` gets.

Progress files: each format's example (the spec's, or one the package itself writes) is mutated — fields replaced by
any JSON value, dropped or added, keys repeated, text re-encoded, cut short — and written where the format lives.
- `tito validate` (in process, with internal errors raised): never a traceback; an `OK` file is one the models read
  (strictly: no repeated key, no contradiction); every `ERROR` is one line naming the file.
- the workspace loader (`Workspace.read`, `Workspace.config`) for the files a workspace holds: never an exception but a
  one-line `TitoError` naming the file; a file read without a warning is one the models read.

Sync replies: an httpx transport answers each request with a drawn status code, content type and body (the API's
reply, a mutated or truncated one, HTML, random bytes, JSON of any shape) or a transport error. `sync` never raises,
its message is one line, and an outbox entry is deleted only when the reply to it was the API's confirmation of what
was sent (checked here independently of the client's own check); the body the API refused moves to `rejected/` only on
the API's own error reply; nothing is ever lost. `ok` only when the progress reply is the user's export holding it.
"""
import contextlib, copy, io, json, os, shutil, tempfile
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from conftest import spec_json_blocks
from tinytorch_progress import tracker
from tinytorch_progress.errors import TitoError
from tinytorch_progress.errors import FormatError
from tinytorch_progress.schemas import FORMATS, CombinedExport, UploadReply, detect_format, load
from tinytorch_progress.jsonio import parse_json
from tinytorch_progress.store import Workspace
from tinytorch_progress.config import read_config
from tinytorch_progress.outbox import Outbox
from tinytorch_progress.sync import login, sync

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- seeds: one valid example of every format

def _status_example() -> dict:
    from tinytorch_progress.cli.main import main
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / ".tito").mkdir()
        tracker.complete(d, 1, skip_tests=True)
        out = io.StringIO()
        with contextlib.redirect_stdout(out): assert main(["--root", d, "status", "--json"]) == 0
    return json.loads(out.getvalue())


def _seeds() -> dict:
    by_fmt = {detect_format("x.json", b): b for b in spec_json_blocks()}
    export = by_fmt["export"]
    by_fmt["upload"] = {k: v for k, v in export.items() if k != "timestamp"}
    by_fmt["leaderboard"] = {"leaderboard": [{"user_id": "ada", "username": "ada", "modules_completed": 3,
                                              "milestones_completed": 1, "rank": 1}]}
    by_fmt["curriculum"] = json.loads((Path(__file__).parents[1] / "tinytorch_progress" / "curriculum.json").read_text())
    by_fmt["status"] = _status_example()
    return by_fmt


SEEDS = _seeds()
WHERE = {"root-progress": "progress.json", "progress": ".tito/progress.json", "milestones": ".tito/milestones.json",
         "config": ".tito/config.json", "report-card": "instructor/reports/01_tensor_report_card_20250101.json",
         "performance": "tests/performance/performance_results/14_profiling_performance_results.json",
         "curriculum": ".tito/curriculum.json", "export": "export.json", "upload": "upload.json",
         "leaderboard": "leaderboard.json", "status": "status.json"}
WORKSPACE_FILES = ("root-progress", "progress", "milestones", "config")


def test_every_format_has_a_valid_seed():
    assert set(SEEDS) == set(FORMATS) == set(WHERE)
    for fmt, seed in SEEDS.items():
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / WHERE[fmt]; p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(seed))
            assert load(p, fmt, unique_keys=True) is not None, fmt


# ---------------------------------------------------------------- mutations

ODD = st.sampled_from([None, True, False, 0, -1, 1, 2, 7, 20, 99, 999, 1000, 100_001, 2**63, -2**63, 1.5, -0.0, 1e308,
                       "", " ", "01", "1", "x", "07_attention", "module_01", "\u202eevil", "cs101/bob", "ada", "ada lovelace",
                       "2025-11-16T10:00:00", "2025-11-16T10:00:00Z", "2099-01-01T00:00:00+14:00", "yesterday", "1.0", "2.0",
                       "A", "F", "stored", "{'ok': True}", "Error: x", "\x00", "é" * 300, [], {}, [1], {"a": 1}])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=8) | ODD, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=8)


@st.composite
def mutated(draw, value, depth=0):
    "`value` with some parts replaced, dropped or added (deeper parts less often)."
    if depth > 4 or draw(st.integers(0, 9)) == 0: return draw(st.one_of(ODD, JSON)) if draw(st.booleans()) else value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            what = draw(st.sampled_from(["keep", "keep", "keep", "mutate", "drop", "replace"]))
            if what == "drop": continue
            out[k] = v if what == "keep" else draw(mutated(v, depth + 1)) if what == "mutate" else draw(st.one_of(ODD, JSON))
        for k, v in draw(st.dictionaries(st.sampled_from(["extra", "version", "user_id", "x", "total_unlocked"]), JSON, max_size=2)).items():
            out.setdefault(k, v)
        return out
    if isinstance(value, list):
        out = [draw(mutated(v, depth + 1)) if draw(st.booleans()) else v for v in value if draw(st.integers(0, 5))]
        return out + draw(st.lists(st.one_of(ODD, *(st.just(v) for v in value[:1])), max_size=2))
    return draw(st.one_of(ODD, st.just(value)))


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
    from tinytorch_progress.cli.main import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main(["validate", *map(str, args)])
    return rc, out.getvalue(), err.getvalue()


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


# ---------------------------------------------------------------- sync replies

@pytest.fixture(scope="module")
def template(tmp_path_factory):
    "A workspace logged in as ada (to a server the transport stands in for), with progress to send."
    root = tmp_path_factory.mktemp("sync") / "ws"
    (root / ".tito").mkdir(parents=True)
    for n in (1, 2): tracker.complete(root, n, skip_tests=True)
    tracker.complete_milestone(root, "01")
    login(root, "http://127.0.0.1:9", "tt_x", "ada")
    return root


def confirms(status: int, ctype: str, body: bytes, sent: bytes) -> bool:
    "The oracle: is this reply the API's confirmation of the upload `sent`? (Written apart from the client's check.)"
    if status not in (200, 201) or ctype.split(";")[0].strip().lower() != "application/json": return False
    try: reply = UploadReply.model_validate(parse_json(body, "reply", unique_keys=True)).model_dump()
    except Exception: return False
    s = json.loads(sent)
    return (reply["user_id"] == (s.get("user_id") or reply["user_id"])
            and reply["modules_completed"] == s["module_progress"]["completed_count"]
            and reply["milestones_completed"] == s["milestone_progress"]["completed_count"])


def api_refusal(status: int, ctype: str, body: bytes) -> bool:
    if status not in (400, 403, 413, 422) or ctype.split(";")[0].strip().lower() != "application/json": return False
    try: d = json.loads(body)
    except Exception: return False
    return isinstance(d, dict) and isinstance(d.get("detail"), str)


STATUS = st.one_of(st.sampled_from([200, 201, 200, 201, 202, 204, 301, 302, 400, 401, 403, 404, 413, 422, 429, 500, 502, 503]),
                   st.integers(100, 599))
CTYPE = st.sampled_from(["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "text/html",
                         "text/plain", "", "application/problem+json", "application/json\x1b[31m"])


UPLOAD_KINDS = ("good", "good", "good", "mutated", "cut", "detail", "html", "empty", "json", "bytes", "dup")
HELD_KINDS = ("good", "good", "mutated", "other-user", "cut", "html", "json")


@st.composite
def upload_body(draw, sent: dict, kinds=UPLOAD_KINDS):
    "A reply body to the upload of `sent`: the API's, a changed or cut one, an error, HTML, noise."
    good = {"status": draw(st.sampled_from(["stored", "unchanged"])), "user_id": sent.get("user_id") or "ada",
            "snapshot_id": 1, "latest": True, "modules_completed": sent["module_progress"]["completed_count"],
            "milestones_completed": sent["milestone_progress"]["completed_count"]}
    text = json.dumps(good)
    kind = draw(st.sampled_from(kinds))
    if kind == "good": return text.encode()
    if kind == "mutated": return json.dumps(draw(mutated(good))).encode()
    if kind == "cut": return text[:draw(st.integers(0, len(text) - 1))].encode()
    if kind == "detail": return json.dumps({"detail": draw(st.text(max_size=300))}).encode()
    if kind == "html": return b"<html><body>Please sign in</body></html>"
    if kind == "empty": return b""
    if kind == "json": return json.dumps(draw(JSON)).encode()
    if kind == "dup": return ('{"status": "stored", ' + text[1:]).encode()
    return draw(st.binary(max_size=200))


@st.composite
def held_body(draw, sent: dict, kinds=HELD_KINDS):
    "A reply body to `GET /api/progress/ada`: the export of what was sent, another one, a changed one, noise."
    good = {**sent, "user_id": "ada"}
    kind = draw(st.sampled_from(kinds))
    if kind == "good": return json.dumps(good).encode()
    if kind == "mutated": return json.dumps(draw(mutated(good))).encode()
    if kind == "other-user": return json.dumps({**good, "user_id": "bob"}).encode()
    if kind == "cut": t = json.dumps(good); return t[:draw(st.integers(0, len(t) - 1))].encode()
    if kind == "html": return b"<html></html>"
    return json.dumps(draw(JSON)).encode()


class Network:
    "An httpx transport drawing every answer from hypothesis, recording what was asked and answered."
    def __init__(self, data):
        self.data, self.log = data, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        draw = self.data.draw
        if draw(st.integers(0, 12)) == 0:
            raise draw(st.sampled_from([httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")]))
        sent, api = request.content, draw(st.booleans())  # half the time the API's own answer, mostly a good one
        if request.method == "POST":
            kinds = ("good", "good", "good", "good", "detail", "mutated") if api else UPLOAD_KINDS
            try: body = draw(upload_body(json.loads(sent), kinds))
            except (ValueError, KeyError, TypeError): body = b"{}"
        else:
            last = next((json.loads(c) for m, c, *_ in reversed(self.log) if m == "POST"), None)
            body = draw(held_body(last, ("good", "good", "good", "other-user") if api else HELD_KINDS)) if last else b"{}"
        status, ctype = draw(STATUS), draw(CTYPE)
        if api:
            ctype = "application/json"
            refusal = body.startswith(b'{"detail"')
            status = draw(st.sampled_from([400, 401, 403, 404, 413, 422, 429] if refusal else [201, 200] if request.method == "POST" else [200]))
        headers = {"retry-after": draw(st.sampled_from(["0", "abc", "", "-1"])), "location": draw(st.text(max_size=40))}
        headers = {k: v.encode("ascii", "replace").decode() for k, v in headers.items()}
        if ctype: headers["content-type"] = ctype
        self.log.append((request.method, sent, status, ctype, body))
        return httpx.Response(status, headers=headers, content=body)


EXTRA_ITEMS = st.lists(st.sampled_from(["other-user", "damaged", "invalid", "no-user", "last-sync"]), max_size=2)


def queue_extra(root: Path, kinds):
    ob = Outbox(root)
    for i, kind in enumerate(kinds):
        base = {**tracker_export(root), "queued_by_the_fuzzer": i}  # every item's bytes unique (an unknown field is kept)
        ob.dir.mkdir(parents=True, exist_ok=True)
        p = ob.dir / f"{i:020d}-{kind}.json"
        if kind == "last-sync": (root / ".tito" / "last_sync.json").write_text('{"server": "http://127.0.0.1:9", "body": "[1"}')
        elif kind == "damaged": p.write_bytes(b"\x00\xff{")
        elif kind == "invalid": p.write_text('{"module_progress": 3}')
        elif kind == "other-user": p.write_text(json.dumps({**base, "user_id": "demo-student"}))
        else: p.write_text(json.dumps({k: v for k, v in base.items() if k != "user_id"}))


def tracker_export(root: Path) -> dict:
    from tinytorch_progress.export import build_export
    return build_export(root, "ada").to_json()


def everything_queued(root: Path) -> dict:
    "name → bytes of every outbox file, wherever it is (queued, rejected, not sent)."
    ob = root / ".tito" / "outbox"
    return {p.name: p.read_bytes() for p in ob.rglob("*.json")} if ob.is_dir() else {}


def test_sync_survives_any_reply_and_keeps_what_was_not_confirmed(template):
    @FUZZ
    @given(st.data(), EXTRA_ITEMS)
    def run(data, extra):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d) / "ws"; shutil.copytree(template, root)
            queue_extra(root, extra)
            before, net = everything_queued(root), Network(data)
            res = sync(root, retries=0, backoff=0, timeout=5, transport=httpx.MockTransport(net))
            assert "\n" not in res.message and res.message, res.message
            json.dumps(res.to_json())
            after, ob = everything_queued(root), Outbox(root)
            posts = [(sent, status, ctype, body) for m, sent, status, ctype, body in net.log if m == "POST"]
            delivered = {sent for sent, status, ctype, body in posts if confirms(status, ctype, body, sent)}
            assert res.sent == sum(confirms(status, ctype, body, sent) for sent, status, ctype, body in posts)
            for name, raw in before.items():  # nothing lost: kept somewhere, or confirmed
                assert name in after or raw in delivered, f"{name} disappeared without a confirmation"
            for sent, *_ in posts: assert sent in delivered or sent in after.values(), "a sent snapshot was lost"
            still_queued = {p.read_bytes() for p in ob.items()}
            assert not delivered & still_queued, "a confirmed snapshot stayed queued"
            for p in ob.rejected_dir.glob("*.json"):
                assert any(sent == after[p.name] and api_refusal(status, ctype, body) for sent, status, ctype, body in posts), p.name
            if res.ok:
                gets = [(status, ctype, body) for m, _, status, ctype, body in net.log if m == "GET"]
                assert gets and gets[-1][0] == 200 and res.rejected == [] and res.sent >= 1
                held = CombinedExport.model_validate(json.loads(gets[-1][2]))
                assert held.user_id == "ada" and held.module_progress.completed_modules == [1, 2]
    run()


def test_an_outbox_entry_leaves_only_with_a_confirmation(template):
    "The plainest form of the promise: the first reply is anything but the API's confirmation, the entry stays."
    @FUZZ
    @given(STATUS, CTYPE, st.one_of(st.binary(max_size=100), JSON.map(lambda v: json.dumps(v).encode())))
    def run(status, ctype, body):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d) / "ws"; shutil.copytree(template, root)
            replies = []
            def answer(request):
                headers = {"content-type": ctype} if ctype else {}
                replies.append(request.content)
                return httpx.Response(status, headers=headers, content=body)
            res = sync(root, retries=0, backoff=0, timeout=5, transport=httpx.MockTransport(answer))
            assert not res.ok and res.sent == 0 and "\n" not in res.message
            assert len(Outbox(root).items()) + len(list(Outbox(root).rejected_dir.glob("*.json"))) == 1
            if list(Outbox(root).rejected_dir.glob("*.json")): assert api_refusal(status, ctype, body)
    run()
