"""Fuzz the website's OpenAPI schema with schemathesis, in process (ASGI): no input may produce a 5xx, and responses
must match the documented status codes, content types and schemas.

Bounded: a fixed number of examples per operation, derandomized, so the run is reproducible and well under 2 minutes.
The upload operation always carries a valid token (401s are covered in test_server.py); part of the generated bodies
are made consistent and owned by the token's user, so the storing path is fuzzed too, not only the rejections.

Then hypothesis over the upload path itself (issue 19), on both databases: bodies with a key repeated at any depth,
timestamps from year 1 to 9999 (naive, `Z`, any offset, past the calendar's ends, not timestamps at all), and user ids
drawn from every Unicode general category — never a 5xx, always a JSON 4xx or a 200/201, and an accepted upload reads
back as the export it was validated into and is the latest (the server's receive order, not the timestamp, decides)."""
import atexit, os, shutil, tempfile, zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from tinytorch_progress import server as srv
from tinytorch_progress.ids import module_number
from test_server import fresh_db, pg_unavailable

pytestmark = pytest.mark.slow  # hundreds of generated requests per operation, on both databases

EXAMPLES = int(os.environ.get("TITO_FUZZ_EXAMPLES", "100"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

_tmp = tempfile.mkdtemp(prefix="tito-fuzz-")
atexit.register(shutil.rmtree, _tmp, True)


def _site(url):
    app = srv.create_app(url, rate_limit=(10**9, 10**9), public=True, throttle=False)  # anonymous reads below; no other limits
    eng = app.state.db.engine
    token = srv.add_user(eng, "fuzz")
    # something to read back for GET /api/progress/{user_id} and /u/{username}
    srv.store_upload(app.state.db, srv.user_for_token(eng, token), srv.parse_upload(
        b'{"module_progress": {"total_modules": 20, "completed_count": 1, "completed_modules": [1], "completion_percentage": 5},'
        b' "milestone_progress": {"total_milestones": 6, "unlocked_count": 0, "completed_count": 0}}'))
    return app, {"Authorization": f"Bearer {token}"}


def _pg_url():
    "A fresh PostgreSQL schema for the whole fuzz run (dropped at exit), or None when PostgreSQL is unreachable."
    if pg_unavailable(): return None
    url, drop = fresh_db("postgresql", None)
    atexit.register(drop)
    return url


def _num(x):
    try: return module_number(x)
    except ValueError: return None


def _stone(x):
    from tinytorch_progress.ids import milestone_id
    try: return milestone_id(x)
    except ValueError: return None


COURSE_MODULES, COURSE_STONES = 20, 6  # the built-in curriculum, which the fuzzed sites serve


def make_consistent(body):
    "Turn a generated upload into a consistent one inside the course, owned by the token's user (so it is stored, not rejected)."
    if not (isinstance(body, dict) and isinstance(body.get("module_progress"), dict) and isinstance(body.get("milestone_progress"), dict)):
        return body
    mp, sp = body["module_progress"], body["milestone_progress"]
    mods = mp.get("completed_modules")
    if not isinstance(mods, list) or not isinstance(mp.get("total_modules"), int) or not 1 <= mp["total_modules"] <= 999: return body
    nums = sorted({n for n in map(_num, mods) if n is not None and 1 <= n <= COURSE_MODULES})
    mp.update(total_modules=COURSE_MODULES, completed_modules=nums, completed_count=len(nums),
              completion_percentage=len(nums) * 100 // COURSE_MODULES)
    for field in ("last_worked", "last_completed"):
        if mp.get(field) is not None and not 1 <= (_num(mp[field]) or 0) <= COURSE_MODULES: mp[field] = None
    if isinstance(mp.get("completion_dates"), dict):
        mp["completion_dates"] = {k: v for k, v in mp["completion_dates"].items() if 1 <= (_num(k) or 0) <= COURSE_MODULES}
    unl = sp.get("unlocked_milestones") if isinstance(sp.get("unlocked_milestones"), list) else []
    seen, keep = set(), []
    for m in unl:
        key = _stone(m.get("id")) if isinstance(m, dict) else None
        if key is not None and key not in seen and 1 <= int(key) <= COURSE_STONES:
            seen.add(key); keep.append(m)
            if m.get("completed") is not True: m["completed_at"] = None
    sp.update(unlocked_milestones=keep, unlocked_count=len(keep), locked_milestones=[],
              completed_count=sum(m.get("completed") is True for m in keep), total_milestones=COURSE_STONES)
    body["user_id"] = "fuzz"
    return body


def _schema(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    @schema.hook
    def map_body(context, body):
        # two bodies in three are repaired into consistent ones; the rest stay as generated (rejections)
        if isinstance(body, dict) and zlib.crc32(repr(body).encode("utf-8", "replace")) % 3: return make_consistent(body)
        return body
    return schema


SQLITE_APP, SQLITE_AUTH = _site(f"sqlite:///{_tmp}/fuzz.db")
sqlite_schema = _schema(SQLITE_APP)
_pg = _pg_url()
PG_APP, PG_AUTH = _site(_pg) if _pg else (SQLITE_APP, SQLITE_AUTH)
pg_schema = _schema(PG_APP)

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@sqlite_schema.parametrize()
@FUZZ
def test_fuzz_sqlite(case):
    case.call_and_validate(headers=SQLITE_AUTH, checks=CHECKS)


@pg_schema.parametrize()
@FUZZ
def test_fuzz_postgresql(case):
    if _pg is None: pytest.skip(pg_unavailable())
    case.call_and_validate(headers=PG_AUTH, checks=CHECKS)


def test_fuzzing_reached_the_store():
    "The repaired bodies really were stored (the fuzz did not only exercise rejections)."
    from sqlalchemy import func, select
    with SQLITE_APP.state.db.read() as c:
        n = c.execute(select(func.count()).select_from(srv.Snapshot.__table__)).scalar()
    if n <= 1: pytest.skip("run together with test_fuzz_sqlite")
    assert n > 5


# ---- hypothesis over the upload path: duplicate keys, extreme timestamps, every Unicode category in names ------------
# Issue 19: none of these may be a 5xx; each answer is a JSON 4xx or a 200/201, and what is accepted reads back as the
# export it was validated into — and, being received last, as the student's latest, whatever its timestamp says.
import json as _json
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import given, strategies as st

from tinytorch_progress.ids import InvalidId, USER_ID_PATTERN, check_user_id
from tinytorch_progress.schemas import CombinedExport
from test_server import upload_body

CATEGORIES = ("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
              "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn")
any_category = st.one_of(*(st.characters(categories=[c]) for c in CATEGORIES))  # each category equally likely
names = st.one_of(st.from_regex(USER_ID_PATTERN, fullmatch=True), st.text(any_category, max_size=6),
                  st.builds(lambda a, c, b: a + c + b, st.sampled_from(["", "fu", "fuzz"]), any_category,
                            st.sampled_from(["", "zz", "-x"])))

_zones = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
_instants = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999))
timestamps = st.one_of(
    _instants.map(datetime.isoformat),  # naive
    st.builds(lambda d, z: d.replace(tzinfo=z).isoformat(), _instants, _zones),  # any offset, also past the calendar's ends
    st.builds(lambda d: d.isoformat() + "Z", _instants),
    st.sampled_from(["0001-01-01T00:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999",
                     "9999-12-31T23:59:59-14:00", "2099-01-01T00:00:00", "2025-11-20 10:00", "20251120T100000",
                     "2025-02-30T00:00:00", "10000-01-01T00:00:00", "-0001-01-01T00:00:00", "2025-11-20T10:00:00+24:00"]),
    st.one_of(st.text(max_size=20), st.integers(), st.none()))  # not a timestamp at all


def encode(x, dup_at: int, seen: list) -> str:
    "JSON text of `x` in which the `dup_at`-th object (pre-order) repeats its first key; `seen[0]` counts objects."
    if isinstance(x, dict):
        i, seen[0] = seen[0], seen[0] + 1
        items = [f"{_json.dumps(k)}: {encode(v, dup_at, seen)}" for k, v in x.items()]
        if i == dup_at and x:
            k, v = next(iter(x.items()))
            items.append(f"{_json.dumps(k)}: {_json.dumps(v)}")
            seen.append("dup")
        return "{" + ", ".join(items) + "}"
    if isinstance(x, list): return "[" + ", ".join(encode(v, dup_at, seen) for v in x) + "]"
    return _json.dumps(x)


@st.composite
def uploads(draw):
    "(raw body, the body as a dict, whether a key is repeated): a consistent upload with hostile parts."
    mods = tuple(sorted(draw(st.sets(st.integers(1, 20), max_size=20))))
    body = upload_body(mods)
    uid = draw(st.sampled_from(["absent", "fuzz", "other"]))
    if uid != "absent": body["user_id"] = uid if uid == "fuzz" else draw(names)
    if draw(st.integers(0, 3)): body["timestamp"] = draw(timestamps)
    dup_at = draw(st.integers(0, 12)) if draw(st.integers(0, 2)) == 2 else -1  # a repeated key in one body of three
    seen = [0]
    raw = encode(body, dup_at, seen).encode("utf-8", "surrogatepass")  # ensure_ascii escapes: surrogates travel as \ud800
    return raw, body, "dup" in seen


def _valid_name(s) -> bool:
    try: return check_user_id(s) == s
    except InvalidId: return False


def check_upload(client, auth_headers, raw, body, dup):
    r = client.post("/api/progress/upload", content=raw, headers=auth_headers | {"content-type": "application/json"})
    assert r.status_code in (200, 201) or 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    reply = r.json()
    if r.status_code >= 400:
        assert isinstance(reply["detail"], str) and reply["detail"] and "\n" not in reply["detail"]
    if dup: assert r.status_code == 422 and "duplicate key" in reply["detail"], reply
    uid = body.get("user_id")
    if dup: pass
    elif uid is not None and not _valid_name(uid): assert r.status_code == 422 and ("user_id" in reply["detail"] or "Unicode" in reply["detail"]), reply
    elif uid not in (None, "fuzz"): assert r.status_code in (403, 422), reply
    if r.status_code == 201: assert reply["latest"] is True  # received last: the latest, whatever the timestamp
    if r.status_code in (200, 201) and reply["latest"]:
        got = client.get("/api/progress/fuzz", headers=auth_headers).json()
        sent = {**body, "user_id": "fuzz", "timestamp": body["timestamp"] if body.get("timestamp") is not None else got["timestamp"]}
        assert got == CombinedExport.model_validate(sent).to_json()
    return r.status_code


SQLITE_CLIENT = TestClient(SQLITE_APP, raise_server_exceptions=False)
PG_CLIENT = TestClient(PG_APP, raise_server_exceptions=False)
_stored = []


@FUZZ
@given(uploads())
def test_fuzz_uploads_sqlite(upload):
    _stored.append(check_upload(SQLITE_CLIENT, SQLITE_AUTH, *upload))


@FUZZ
@given(uploads())
def test_fuzz_uploads_postgresql(upload):
    if _pg is None: pytest.skip(pg_unavailable())
    check_upload(PG_CLIENT, PG_AUTH, *upload)


def _in_calendar(ts: str) -> bool:
    "Whether an ISO timestamp reads as a datetime whose UTC time is inside years 1–9999 (what the server stores)."
    from tinytorch_progress.timeutil import parse_timestamp
    try: d = parse_timestamp(ts)
    except ValueError: return False
    try: d.astimezone(timezone.utc) if d.tzinfo else d
    except (OverflowError, ValueError): return False
    return True


@st.composite
def stamped(draw):
    "A consistent upload whose timestamp is any instant of the calendar, naive or at any offset."
    body = upload_body(tuple(range(1, draw(st.integers(0, 20)) + 1)))
    body["timestamp"] = draw(st.one_of(_instants.map(datetime.isoformat),
                                       st.builds(lambda d, z: d.replace(tzinfo=z).isoformat(), _instants, _zones)))
    return body


def check_stamped(client, auth_headers, body):
    r = client.post("/api/progress/upload", json=body, headers=auth_headers)
    assert r.status_code in (200, 201, 422), (r.status_code, r.text)
    assert (r.status_code != 422) == _in_calendar(body["timestamp"]), (body["timestamp"], r.text)
    if r.status_code == 422: assert r.json()["detail"] == "body: timestamp: out of range"
    elif r.json()["latest"]:  # a future timestamp does not keep a later upload from being the latest
        got = client.get("/api/progress/fuzz", headers=auth_headers).json()
        assert got["timestamp"] == body["timestamp"]
        assert got == CombinedExport.model_validate({**body, "user_id": "fuzz"}).to_json()


@FUZZ
@given(stamped())
def test_fuzz_timestamps_sqlite(body):
    check_stamped(SQLITE_CLIENT, SQLITE_AUTH, body)


@FUZZ
@given(stamped())
def test_fuzz_timestamps_postgresql(body):
    if _pg is None: pytest.skip(pg_unavailable())
    check_stamped(PG_CLIENT, PG_AUTH, body)


def test_upload_fuzzing_reached_the_store():
    "Part of the fuzzed uploads were stored and part refused, so both paths ran."
    if not _stored: pytest.skip("run together with test_fuzz_uploads_sqlite")
    assert {201} <= set(_stored) and {422} <= set(_stored), sorted(set(_stored))


@FUZZ
@given(names)
def test_fuzz_names_in_urls(name):
    "A name in the URL of the API or of a page: 422 exactly when it breaks the rule, never a 5xx (401: not a listed student)."
    seg = quote(name.encode("utf-8", "surrogatepass"), safe="")
    for url in (f"/api/progress/{seg}", f"/u/{seg}"):
        r = SQLITE_CLIENT.get(url)
        assert r.status_code in (200, 401, 404, 422) and r.headers["content-type"].startswith("application/json"), (url, r.status_code)
        assert (r.status_code == 422) == (not _valid_name(name)), (url, r.text)


# ---- issue 28: session lifecycles, course-bound counts, header abuse -------------------------------------------------------
# Each group counts its attempts (examples, and the operations or connections in them) in ATTEMPTS; run with -s to see
# them (test_fuzz_attempts_reported prints the table).
import collections, itertools, select, socket, threading, time

from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule  # noqa: F401 (documented API)

ATTEMPTS = collections.Counter()
HERE = {"origin": "http://testserver"}
_ids = itertools.count()


def _life_app(url):
    "A private site on `url` (its own tables, beside the fuzz site's), with no throttles: the lifecycle is under test."
    return srv.create_app(url, public=False, throttle=False) if url else None


LIFE = {"sqlite": _life_app(f"sqlite:///{_tmp}/life.db"), "postgresql": _life_app(_pg_url() if _pg else None)}

ops = st.lists(st.tuples(st.sampled_from(["login", "login", "login", "check", "check", "logout", "revoke", "token", "role"]),
                         st.integers(0, 2), st.integers(0, 30)), min_size=1, max_size=25)


def run_lifecycle(app, steps):
    "Apply `steps` to three fresh users through the site and the admin functions; every answer must match the model."
    eng, c = app.state.db.engine, TestClient(app, raise_server_exceptions=False)
    names = [f"life{next(_ids)}" for _ in range(3)]
    token = {n: srv.add_user(eng, n) for n in names}
    last = dict(token)  # the token a user last had (a revoked one keeps failing)
    role = {n: "student" for n in names}
    sessions = []  # [sid, owner, valid]
    def valid_of(n): return [s for s in sessions if s[1] == n and s[2]]
    def end_all(n):
        for s in valid_of(n): s[2] = False
    for kind, who, pick in steps:
        ATTEMPTS["sessions: operations"] += 1
        n = names[who]
        if kind == "login":
            c.cookies.clear()
            r = c.post("/login", data={"token": token[n] or last[n]}, headers=HERE, follow_redirects=False)
            if token[n] is None: assert r.status_code == 401, r.text; continue
            assert r.status_code == 303, r.text
            sessions.append([r.cookies["tito_session"], n, True])
            for s in valid_of(n)[:-srv.SESSIONS_PER_USER]: s[2] = False  # the oldest beyond the cap end
        elif kind in ("check", "logout") and sessions:
            sid, owner, ok = sessions[pick % len(sessions)]
            c.cookies.clear(); c.cookies.set("tito_session", sid)
            if kind == "logout":
                assert c.post("/logout", headers=HERE, follow_redirects=False).status_code == 303
                sessions[pick % len(sessions)][2] = False
                continue
            own, cls = c.get(f"/u/{owner}").status_code, c.get("/class").status_code
            want = (200, 200 if role[owner] == "instructor" else 403) if ok else (401, 401)
            assert (own, cls) == want, (kind, owner, ok, role[owner], own, cls)
        elif kind == "revoke":
            srv.revoke(eng, n); token[n] = None; end_all(n)
        elif kind == "token":
            token[n] = last[n] = srv.issue_token(eng, n); end_all(n)
        elif kind == "role":
            role[n] = "instructor" if role[n] == "student" else "student"
            srv.set_role(eng, n, role[n]); end_all(n)
    for sid, owner, ok in sessions:  # and at the end, every session ever opened
        c.cookies.clear(); c.cookies.set("tito_session", sid)
        assert c.get(f"/u/{owner}").status_code == (200 if ok else 401), (owner, ok)


@FUZZ
@given(ops)
def test_fuzz_session_lifecycles_sqlite(steps):
    ATTEMPTS["sessions: sequences"] += 1
    run_lifecycle(LIFE["sqlite"], steps)


@FUZZ
@given(ops)
def test_fuzz_session_lifecycles_postgresql(steps):
    if _pg is None: pytest.skip(pg_unavailable())
    ATTEMPTS["sessions: sequences"] += 1
    run_lifecycle(LIFE["postgresql"], steps)


@st.composite
def course_counts(draw):
    "(an upload consistent in itself, the fields it puts outside the built-in course — empty when inside)."
    total = draw(st.one_of(st.just(COURSE_MODULES), st.integers(1, 999)))
    mods = sorted(draw(st.sets(st.integers(1, min(total, 2 * COURSE_MODULES)), max_size=30)))
    stones = sorted(draw(st.sets(st.integers(1, 2 * COURSE_STONES), max_size=8)))
    total_s = max(len(stones), draw(st.one_of(st.just(COURSE_STONES), st.integers(0, 99))))  # consistent: at least those listed
    last = draw(st.one_of(st.none(), st.integers(1, min(total, 2 * COURSE_MODULES))))
    body = upload_body(tuple(mods), tuple((f"{i:02d}", draw(st.booleans())) for i in stones), total=total)
    body["module_progress"].update(completion_dates={str(m): "2025-11-11T10:00:00" for m in mods}, last_completed=None,
                                   last_worked=None if last is None else f"{last:02d}")
    body["milestone_progress"].update(total_milestones=total_s, locked_milestones=[])
    outside = [f for f, bad in (("module_progress.total_modules", total != COURSE_MODULES),
                                ("module_progress.completed_modules", any(m > COURSE_MODULES for m in mods)),
                                ("module_progress.completion_dates", any(m > COURSE_MODULES for m in mods)),
                                ("module_progress.last_worked", last is not None and last > COURSE_MODULES),
                                ("milestone_progress.total_milestones", total_s != COURSE_STONES),
                                ("milestone_progress.unlocked_milestones", any(i > COURSE_STONES for i in stones))) if bad]
    return body, outside


def check_course_counts(client, headers, staff, body, outside):
    ATTEMPTS["course bounds: uploads"] += 1
    r = client.post("/api/progress/upload", json=body, headers=headers)
    if outside:
        assert r.status_code == 422, (outside, r.status_code, r.text)
        detail = r.json()["detail"]
        assert detail.startswith("outside the course: ") and [f for f in outside if f + ":" in detail] == outside, (outside, detail)
    else: assert r.status_code in (200, 201), (r.status_code, r.text)
    board = client.get("/api/leaderboard?limit=500", headers=staff).json()["leaderboard"]
    assert all(e["modules_completed"] <= COURSE_MODULES and e["milestones_completed"] <= COURSE_STONES for e in board)


def _bounds_site(app):
    eng = app.state.db.engine
    return ({"Authorization": f"Bearer {srv.add_user(eng, f'bounds{next(_ids)}')}"},
            {"Authorization": f"Bearer {srv.add_user(eng, f'staff{next(_ids)}', role='instructor')}"})


BOUNDS = {"sqlite": _bounds_site(SQLITE_APP), "postgresql": _bounds_site(PG_APP) if _pg else None}


@FUZZ
@given(course_counts())
def test_fuzz_course_bounds_sqlite(case):
    check_course_counts(SQLITE_CLIENT, *BOUNDS["sqlite"], *case)


@FUZZ
@given(course_counts())
def test_fuzz_course_bounds_postgresql(case):
    if _pg is None: pytest.skip(pg_unavailable())
    check_course_counts(PG_CLIENT, *BOUNDS["postgresql"], *case)


# Header abuse: a real uvicorn on loopback with the guarded protocol and small bounds, so that each example stays
# within a second or so and a few dozen connections.
GUARD = None
_HDR = {}


def _header_server():
    "Start (once) a uvicorn thread serving the fuzz site through `GuardedHttp` with small bounds; its port."
    global GUARD
    if "port" in _HDR: return _HDR["port"]
    import uvicorn
    from tinytorch_progress.server.serving import Guard, GuardedHttp
    GUARD = Guard(max_connections=12, max_per_client=12, max_header_bytes=2048, header_timeout=0.6, body_timeout=0.6, linger=0.3)
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    config = uvicorn.Config(SQLITE_APP, host="127.0.0.1", port=port, http=GuardedHttp, loop="asyncio", log_level="critical")
    config.tito_guard = GUARD
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started: time.sleep(0.02)
    _HDR["port"], _HDR["server"] = port, server
    return port


def _wait_admitted(ok, within=2.0):
    "Poll the fuzz server's count of admitted connections until `ok(count)` (instead of sleeping a guessed time)."
    peers = _HDR["server"].server_state.__dict__.setdefault("tito_peers", collections.Counter())
    end = time.monotonic() + within
    while not ok(peers.get("", 0)) and time.monotonic() < end: time.sleep(0.005)


def _response(sock, timeout=3.0):
    "(status, whole response) of one response on `sock` (None: a reset, a close, or nothing within `timeout`)."
    sock.settimeout(timeout)
    out = b""
    try:
        while b"\r\n\r\n" not in out:
            chunk = sock.recv(4096)
            if not chunk: return None, out
            out += chunk
        head, rest = out.split(b"\r\n\r\n", 1)
        length = int(next((l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")), b"0"))
        while len(rest) < length:
            chunk = sock.recv(4096)
            if not chunk: break
            rest += chunk
    except OSError: return None, out
    return (int(out.split(b" ")[1]) if out.startswith(b"HTTP/1.1 ") else None), out


def _status(sock, timeout=3.0):
    "The status of the response on `sock`, or None if none came (a reset, or nothing within `timeout`)."
    return _response(sock, timeout)[0]


scenarios = st.fixed_dictionaries({
    "held": st.integers(0, 16),               # half-sent requests held open first
    "header": st.integers(0, 6000),           # then one request with a header of this many bytes
    "split": st.integers(1, 4),               # sent in this many pieces
    "pause": st.sampled_from([0.0, 0.05, 0.9]),  # between pieces (0.9 s: over the header timeout)
})


def check_headers(sc):
    port, g = _header_server(), GUARD
    ATTEMPTS["headers: scenarios"] += 1
    held = []
    for _ in range(sc["held"]):
        s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /healthz HTTP/1.1\r\nhost: t\r\n"); held.append(s)
    _wait_admitted(lambda n: n >= min(sc["held"], g.max_connections))
    raw = b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-pad: " + b"a" * sc["header"] + b"\r\nconnection: close\r\n\r\n"
    cuts = [len(raw) * i // sc["split"] for i in range(sc["split"] + 1)]
    c = socket.create_connection(("127.0.0.1", port))
    try:
        for a, b in zip(cuts, cuts[1:]):
            c.sendall(raw[a:b])
            if b < len(raw): time.sleep(sc["pause"])
    except OSError: pass  # refused while sending: the answer is there
    got = _status(c)
    ATTEMPTS["headers: connections"] += 1 + len(held)
    if sc["held"] >= g.max_connections: want = {503}
    elif len(raw) - 4 > g.max_header_bytes: want = {431, 408} if sc["pause"] > g.header_timeout and sc["split"] > 1 else {431}
    elif sc["pause"] * (sc["split"] - 1) > g.header_timeout: want = {408}
    else: want = {200}
    ATTEMPTS[f"headers: answered {got}"] += 1
    assert got in want, (sc, got, want)
    statuses = [_status(h, timeout=3) for h in held]
    assert set(statuses) <= {408, 503} and None not in statuses, (sc, statuses)  # every held one answered, none reset
    for s in held + [c]: s.close()
    _wait_admitted(lambda n: n == 0)
    after = socket.create_connection(("127.0.0.1", port))
    after.sendall(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert _status(after) == 200, sc  # and the site serves again
    after.close()


@settings(max_examples=max(10, EXAMPLES // 4), deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(scenarios)
def test_fuzz_header_abuse(sc):
    check_headers(sc)


bodies = st.fixed_dictionaries({
    "size": st.integers(1, 4000),             # an upload body of this many bytes
    "split": st.integers(1, 4),               # sent in this many pieces
    "pause": st.sampled_from([0.0, 0.05, 0.9]),  # between pieces (0.9 s: over the body timeout)
    "idle": st.sampled_from([0.0, 0.8]),      # then, on the same connection, idle this long before one more request
})


def check_body(sc):
    "An upload whose body arrives in pieces: answered (401: no such token) when in time, else a 408; a kept-alive connection then serves on."
    port, g = _header_server(), GUARD
    ATTEMPTS["bodies: scenarios"] += 1
    body = b"x" * sc["size"]
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"POST /api/progress/upload HTTP/1.1\r\nhost: t\r\nauthorization: Bearer not-a-token\r\n"
              b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body))
    cuts = [len(body) * i // sc["split"] for i in range(sc["split"] + 1)]
    for a, b in zip(cuts, cuts[1:]):
        c.sendall(body[a:b])
        if b < len(body) and select.select([c], [], [], sc["pause"])[0]: break  # answered while pausing: read it
    got, out = _response(c)
    late = sc["pause"] * (sc["split"] - 1) > g.body_timeout
    ATTEMPTS[f"bodies: answered {got}"] += 1
    assert got == (408 if late else 401), (sc, got, out)
    if not late:  # kept alive: no timer of the first request may end the connection, however long it idles
        time.sleep(sc["idle"])
        c.sendall(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        assert _response(c)[0] == 200, sc
    c.close()
    _wait_admitted(lambda n: n == 0)


@settings(max_examples=max(10, EXAMPLES // 4), deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(bodies)
def test_fuzz_slow_bodies(sc):
    check_body(sc)


def test_fuzz_attempts_reported():
    "The attempts of each group above (run with -s to read them)."
    if not ATTEMPTS: pytest.skip("run together with the fuzz tests above")
    print("\n" + "\n".join(f"{k}: {v}" for k, v in sorted(ATTEMPTS.items())))
