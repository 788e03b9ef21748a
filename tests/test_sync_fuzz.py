"""Fuzzing the replies `tito sync` gets (issue 19, "Keep them out"): an httpx transport answers each request with a
drawn status code, content type and body (the API's reply, a mutated or truncated one, HTML, random bytes, JSON of any
shape) or a transport error. `sync` never raises, its message is one line, and an outbox entry is deleted only when the
reply to it was the API's confirmation of what was sent (checked here independently of the client's own check); the
body the API refused moves to `rejected/` only on the API's own error reply; nothing is ever lost. `ok` only when the
progress reply is the user's export holding it. Progress files are fuzzed in test_schemas_fuzz.py.
"""
import json, shutil, tempfile
from pathlib import Path

import httpx
import pytest
from hypothesis import given, strategies as st

from fuzzing import FUZZ, JSON, mutated
from tinytorch_progress import tracker
from tinytorch_progress.schemas import CombinedExport, UploadReply
from tinytorch_progress.jsonio import parse_json
from tinytorch_progress.outbox import Outbox
from tinytorch_progress.sync import login, sync

pytestmark = pytest.mark.slow


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
