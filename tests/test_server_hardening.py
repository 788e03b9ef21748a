"""Regression tests for the server side of issue 19 (hostile or unlucky input), on SQLite and PostgreSQL:

3. a future timestamp never freezes a student's latest snapshot: the server's receive order decides;
4. user ids with `/` are refused everywhere, by the one rule for names (`ids.check_user_id`);
9. duplicate JSON keys in an upload are a 422 naming the key, at any depth;
10. bidirectional overrides and every other invisible, combining or non-ASCII character are refused in names —
   checked for every Unicode general category.
The randomised version of these (hypothesis over HTTP) is in test_server_fuzz.py."""
import json, string, unicodedata

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import run_tito
from tinytorch_progress import server as srv
from tinytorch_progress.errors import TitoError
from tinytorch_progress.ids import InvalidId, check_user_id
from test_server import assert_json_error, auth, count, db_url, make_client, site, upload_body  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow  # every Unicode category through the API and the CLI

ALLOWED = set(string.ascii_letters + string.digits + "._@+-")
CATEGORIES = ("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
              "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn")


def post(client, tok, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/api/progress/upload", content=raw, headers=auth(tok) | {"content-type": "application/json"})


# ---- 3. future timestamps ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("future", ["2099-01-01T00:00:00", "2099-01-01T00:00:00Z", "9999-12-31T23:59:59.999999",
                                    "2099-06-01T12:00:00+14:00"])
def test_a_future_timestamp_never_freezes_the_latest(site, future):
    client, app, tok = site
    ahead = post(client, tok["ada"], upload_body(tuple(range(1, 11)), timestamp=future))
    assert ahead.status_code == 201 and ahead.json()["latest"] is True
    assert client.get("/api/progress/ada").json()["module_progress"]["completed_count"] == 10
    for n, when in ((2, "2025-11-20T10:00:00"), (3, None)):  # later real uploads, with and without a timestamp
        body = upload_body(tuple(range(1, n + 1)), **({"timestamp": when} if when else {}))
        r = post(client, tok["ada"], body)
        assert r.status_code == 201 and r.json()["latest"] is True, r.text
        got = client.get("/api/progress/ada").json()
        assert got["module_progress"]["completed_count"] == n
        if when: assert got["timestamp"] == when  # the client's claim is served back as sent
    board = client.get("/api/leaderboard").json()["leaderboard"]
    assert [(x["user_id"], x["modules_completed"]) for x in board] == [("ada", 3)]
    assert count(app, srv.Snapshot) == 3
    srv_rows = srv.list_users(app.state.db.engine)
    assert {r["username"]: r["modules_completed"] for r in srv_rows}["ada"] == 3


def test_a_resent_body_changes_nothing(site):
    "Idempotency is kept: the same body again is `unchanged`, and says whether it is still the latest."
    client, app, tok = site
    a, b = upload_body((1,), timestamp="2099-01-01T00:00:00"), upload_body((1, 2), timestamp="2025-11-20T10:00:00")
    first = post(client, tok["ada"], a)
    assert post(client, tok["ada"], a).json() | {"status": "x"} == first.json() | {"status": "x"}
    post(client, tok["ada"], b)
    again = post(client, tok["ada"], a)
    assert again.status_code == 200 and again.json()["status"] == "unchanged" and again.json()["latest"] is False
    assert client.get("/api/progress/ada").json()["module_progress"]["completed_count"] == 2


@pytest.mark.parametrize("ts,status", [
    ("0001-01-01T00:00:00", 201), ("9999-12-31T23:59:59", 201), ("2025-11-20T10:00:00-12:00", 201),
    ("0001-01-01T00:00:00+14:00", 422), ("9999-12-31T23:59:59-00:01", 422), ("10000-01-01T00:00:00", 422),
    ("2025-13-01T00:00:00", 422), ("", 422), (12345, 422)])
def test_extreme_timestamps_are_stored_or_refused_never_a_crash(site, ts, status):
    client, app, tok = site
    r = post(client, tok["ada"], upload_body(timestamp=ts))
    if status == 201:
        assert r.status_code == 201, r.text
        assert client.get("/api/progress/ada").json()["timestamp"] == ts
    else:
        assert_json_error(r, 422)
        assert "timestamp" in r.json()["detail"]
        assert count(app, srv.Snapshot) == 0


# ---- 4. user ids with `/` ------------------------------------------------------------------------------------------------

def test_user_ids_with_a_slash_are_refused_everywhere(site, db_url, tmp_path):
    client, app, tok = site
    r = run_tito("server", "add-user", "bob2", "--user-id", "cs101/bob", "--db", db_url, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("tito: error: user id 'cs101/bob': character '/' (U+002F) at position 6 is not allowed")
    r = run_tito("server", "add-user", "cs101/bob", "--db", db_url, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("tito: error: username 'cs101/bob'")
    with pytest.raises(TitoError, match="'/'"): srv.add_user(app.state.db.engine, "carl", "a/b")
    assert [u["username"] for u in srv.list_users(app.state.db.engine)] == ["ada", "bob"]
    for uid in ("cs101/bob", "ada/", "/ada", "a/../ada"):
        r = post(client, tok["ada"], upload_body(user_id=uid))
        assert_json_error(r, 422)
        assert "user_id" in r.json()["detail"] and "'/'" in r.json()["detail"]
    for url in ("/api/progress/cs101%2Fbob", "/api/progress/cs101/bob", "/u/cs101%2Fbob", "/u/a/b"):
        r = client.get(url)
        assert_json_error(r, 422)
        assert "character '/' (U+002F)" in r.json()["detail"]
    assert count(app, srv.Snapshot) == 0


# ---- 9. duplicate keys ---------------------------------------------------------------------------------------------------

def _dup(path: list, key: str, value) -> bytes:
    "A valid upload body whose object at `path` has `key` twice (the second time with `value`)."
    body = upload_body()
    obj = body
    for p in path: obj = obj[p]
    text = json.dumps(body)
    inner = json.dumps(obj)
    assert key in obj and text.count(inner) == 1
    return text.replace(inner, inner[:-1] + f", {json.dumps(key)}: {json.dumps(value)}}}").encode()


@pytest.mark.parametrize("path,key,value", [
    ([], "module_progress", upload_body(tuple(range(1, 21)), total=20)["module_progress"]),  # the case
    ([], "module_progress", upload_body()["module_progress"]),  # even the same value twice
    (["module_progress"], "completed_count", 3),
    (["module_progress", "completion_dates"], "1", "2025-11-11T10:00:00"),
    (["milestone_progress", "unlocked_milestones", 0], "completed", True),
    (["statistics"], "current_streak_days", 99),
])
def test_duplicate_keys_are_refused_at_any_depth(site, path, key, value):
    client, app, tok = site
    r = post(client, tok["ada"], _dup(path, key, value))
    assert_json_error(r, 422)
    assert r.json()["detail"] == f"body: line 1: duplicate key {json.dumps(key)} (a key may appear only once in an object)"
    assert count(app, srv.Snapshot) == 0
    assert post(client, tok["ada"], upload_body()).status_code == 201  # the same body without the repeat is fine


def test_duplicate_keys_named_safely(site):
    "A repeated key that is hostile text (a lone surrogate, a bidi override, 10 kB) is named escaped and cut."
    client, app, tok = site
    for key in ("\\ud800", "\\u202e", "k" * 10_000):
        r = post(client, tok["ada"], f'{{"{key}": 1, "{key}": 2}}'.encode())
        assert_json_error(r, 422)
        assert r.json()["detail"].startswith('body: line 1: duplicate key "') and len(r.json()["detail"]) < 200


# ---- 10. every Unicode category in names -------------------------------------------------------------------------------

@pytest.mark.parametrize("ch,name", [("\u202e", "RIGHT-TO-LEFT OVERRIDE"), ("\u200b", "ZERO WIDTH SPACE"),
                                     ("\u2066", "LEFT-TO-RIGHT ISOLATE"), ("\ufeff", "BYTE ORDER MARK"),
                                     ("\u0301", "COMBINING ACUTE"), ("\u3164", "HANGUL FILLER"),
                                     ("\u00a0", "NO-BREAK SPACE"), ("\u0430", "CYRILLIC a"), ("\U000e0041", "TAG A")])
def test_invisible_and_look_alike_characters_are_refused(site, ch, name):
    client, app, tok = site
    uid = f"ev{ch}il"
    with pytest.raises(TitoError, match=f"U\\+{ord(ch):04X}"): srv.add_user(app.state.db.engine, "eve", uid)
    with pytest.raises(TitoError, match=f"U\\+{ord(ch):04X}"): srv.add_user(app.state.db.engine, uid)
    r = post(client, tok["ada"], upload_body(user_id=uid))
    assert_json_error(r, 422)
    assert f"(U+{ord(ch):04X})" in r.json()["detail"], (name, r.json()["detail"])


def _rule(s: str) -> bool:
    return 1 <= len(s) <= 128 and all(c in ALLOWED for c in s) and s[0].isascii() and s[0].isalnum()


@pytest.mark.parametrize("cat", CATEGORIES)
@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_unicode_category(cat, data):
    "A character of each general category, at the start, inside and alone: accepted only if it is in the ASCII set."
    ch = data.draw(st.characters(categories=[cat]), label="ch")
    assert unicodedata.category(ch) == cat
    for s in (ch, ch + "bob", "bob" + ch, "b" + ch * 3 + "b"):
        ok = _rule(s)
        try: assert check_user_id(s) == s and ok, s
        except InvalidId as e:
            assert not ok, s
            msg = str(e)
            assert "\n" not in msg and msg.isprintable() and msg.startswith("user_id "), msg
            if ch not in ALLOWED: assert f"(U+{ord(ch):04X})" in msg


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.text(st.characters(), max_size=140))
def test_any_text_is_a_valid_name_or_one_printable_line(s):
    try: assert check_user_id(s) == s and _rule(s)
    except InvalidId as e: assert not _rule(s) and str(e).isprintable()


@pytest.mark.parametrize("cat", CATEGORIES)
def test_every_category_through_the_api(site, cat):
    "Through add-user, the upload body and both URLs: a name with a character of `cat` is refused unless ASCII-allowed."
    client, app, tok = site
    from hypothesis import find
    ch = find(st.characters(categories=[cat]), lambda c: c not in ALLOWED, settings=settings(database=None))
    uid = f"x{ch}y"
    with pytest.raises(TitoError): srv.add_user(app.state.db.engine, "zed", uid)
    raw = json.dumps(upload_body(user_id=uid)).encode()  # ASCII escapes: lone surrogates travel too
    r = post(client, tok["ada"], raw)
    assert_json_error(r, 422)
    from urllib.parse import quote
    seg = quote(uid.encode("utf-8", "surrogatepass"), safe="")
    for url in (f"/api/progress/{seg}", f"/u/{seg}"):
        assert_json_error(client.get(url), 422)
    assert count(app, srv.Snapshot) == 0


# ---- accounts from before the rule ---------------------------------------------------------------------------------------

def test_a_user_id_from_before_the_rule_breaks_nothing(site, db_url, tmp_path):
    "Any printable user id was allowed before: such an account's uploads are refused with a reason, the rest still works."
    from sqlalchemy import update
    client, app, tok = site
    assert post(client, tok["ada"], upload_body()).status_code == 201
    with app.state.db.write() as c:
        for t in (srv.User.__table__, srv.Standing.__table__):
            c.execute(update(t).where(t.c.username == "ada").values(user_id="\u202eada Ω"))
    assert client.get("/api/leaderboard").json()["leaderboard"][0]["user_id"] == "\u202eada Ω"
    assert client.get("/").status_code == 200 and client.get("/u/ada").status_code == 200
    r = post(client, tok["ada"], upload_body((1,)))
    assert_json_error(r, 422)
    assert r.json()["detail"].startswith("this account's user id '\\u202eada Ω': character '\\u202e' (U+202E)")
    assert "created before this rule" in r.json()["detail"]
    assert post(client, tok["bob"], upload_body()).status_code == 201  # everyone else is unaffected
    r = run_tito("server", "list-users", "--db", db_url, cwd=tmp_path)
    assert r.returncode == 0 and "\u202e" not in r.stdout and "!\\u202ea" in r.stdout and "naming rule" in r.stdout, r.stdout
