"""The class view and who may read what: private by default (401 without credentials, 403 with someone else's),
sessions from /login (HttpOnly, SameSite=Strict, expiring, ended by /logout), `public=True` open, leaderboard names,
stuck and quiet students with a fixed clock, and the gradebook parsed back with the csv module — on SQLite and
PostgreSQL."""
import csv, io, json
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from test_server import auth, db_url, upload_body  # noqa: F401 (fixture)
from tinytorch_progress import server as srv
from tinytorch_progress.server import classview
from tinytorch_progress.server.db import User
from tinytorch_progress.timeutil import utc_now

STUDENT_PAGES = ["/", "/u/ada", "/u/bob", "/api/progress/ada", "/api/progress/bob", "/api/leaderboard"]
INSTRUCTOR_PAGES = ["/class", "/api/class.csv", "/api/class.json"]


def store(app, token, body):
    eng = app.state.db.engine
    srv.store_upload(app.state.db, srv.user_for_token(eng, token), srv.parse_upload(json.dumps(body).encode()))


@pytest.fixture
def cls(db_url):
    "A private site: students ada and bob with uploads, cy without, instructor prof."
    app = srv.create_app(db_url, rate_limit=None, course_name="CS <101>")
    eng = app.state.db.engine
    tok = {n: srv.add_user(eng, n) for n in ("ada", "bob", "cy")}
    tok["prof"] = srv.add_user(eng, "prof", role="instructor")
    store(app, tok["ada"], upload_body((1, 2, 3)))
    store(app, tok["bob"], upload_body((1,), (("01", True),)))
    yield TestClient(app, raise_server_exceptions=False), app, tok
    eng.dispose()


def test_anonymous_gets_401_everywhere(cls):
    c, _, _ = cls
    for url in STUDENT_PAGES + INSTRUCTOR_PAGES:
        r = c.get(url)
        assert r.status_code == 401, url
        if url.startswith("/api/"): assert r.headers["www-authenticate"].startswith("Bearer") and "detail" in r.json()
    page = c.get("/u/ada", headers={"accept": "text/html"})  # a browser gets the sign-in form, coming back here after
    assert page.status_code == 401 and 'action="/login"' in page.text and 'name="next" value="/u/ada"' in page.text
    assert c.get("/healthz").status_code == 200
    assert c.get("/api/progress/ada", headers=auth("tt_forged")).status_code == 401


def test_students_see_only_their_own(cls):
    c, _, tok = cls
    ada = auth(tok["ada"])
    for url in ("/", "/u/ada", "/api/progress/ada", "/api/leaderboard"): assert c.get(url, headers=ada).status_code == 200, url
    for url in ["/u/bob", "/u/nobody", "/api/progress/bob", "/api/progress/nobody"] + INSTRUCTOR_PAGES:
        assert c.get(url, headers=ada).status_code == 403, url  # not even whether someone exists
    prof = auth(tok["prof"])
    for url in STUDENT_PAGES + INSTRUCTOR_PAGES: assert c.get(url, headers=prof).status_code == 200, url
    assert c.get("/u/nobody", headers=prof).status_code == 404


def test_sign_in_cookie_and_sign_out(cls):
    c, _, tok = cls
    assert 'type="password"' in c.get("/login").text
    r = c.post("/login", data={"token": tok["ada"], "next": "/u/ada"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/u/ada" and tok["ada"] not in r.headers["location"]
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie and "Path=/" in cookie
    assert tok["ada"] not in cookie and "Secure" not in cookie  # plain HTTP here; behind an HTTPS proxy it is Secure:
    proxied = c.post("/login", data={"token": tok["ada"]}, headers={"x-forwarded-proto": "https"}, follow_redirects=False)
    assert "Secure" in proxied.headers["set-cookie"]
    c.cookies.clear()
    r = c.post("/login", data={"token": tok["ada"], "next": "/u/ada"}, follow_redirects=False)
    sid = c.cookies["tito_session"]
    assert c.get("/u/ada").status_code == 200 and c.get("/u/bob").status_code == 403
    assert "Sign out ada" in c.get("/u/ada").text
    r = c.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and "tito_session=" in r.headers["set-cookie"]
    c.cookies.clear(); c.cookies.set("tito_session", sid)  # a copy of the signed-out cookie is refused
    assert c.get("/u/ada").status_code == 401
    c.cookies.clear()
    bad = c.post("/login", data={"token": "tt_wrong"})
    assert bad.status_code == 401 and "not valid" in bad.text and "set-cookie" not in bad.headers
    assert c.post("/login", data={"token": tok["ada"], "next": "https://evil.example/"}, follow_redirects=False).headers["location"] == "/"
    assert c.post("/login", data={"token": tok["ada"]}, headers={"origin": "https://evil.example"}).status_code == 403


def test_revoked_token_ends_sessions(cls):
    c, app, tok = cls
    c.post("/login", data={"token": tok["bob"]}, follow_redirects=False)
    assert c.get("/u/bob").status_code == 200
    srv.revoke(app.state.db.engine, "bob")
    assert c.get("/u/bob").status_code == 401


def test_public_site_is_open_but_the_class_view_is_not(db_url):
    app = srv.create_app(db_url, rate_limit=None, public=True)
    tok = srv.add_user(app.state.db.engine, "ada")
    store(app, tok, upload_body((1, 2)))
    c = TestClient(app)
    for url in ("/", "/u/ada", "/api/progress/ada", "/api/leaderboard"): assert c.get(url).status_code == 200, url
    assert c.get("/api/leaderboard").json()["leaderboard"][0]["username"] == "ada"  # today's open pages, real names
    assert [c.get(u).status_code for u in INSTRUCTOR_PAGES] == [401, 401, 401]
    app.state.db.engine.dispose()


def test_leaderboard_names(cls):
    c, app, tok = cls
    ada, prof = auth(tok["ada"]), auth(tok["prof"])
    assert [e["username"] for e in c.get("/api/leaderboard", headers=prof).json()["leaderboard"]] == ["ada", "bob"]
    seen = c.get("/api/leaderboard", headers=ada).json()["leaderboard"]
    assert all(e["username"].startswith("student-") and e["user_id"] == e["username"] for e in seen)
    assert c.post("/api/profile", json={"display_name": "Bobby"}, headers=auth(tok["bob"])).status_code == 200
    assert c.post("/api/profile", json={"display_name": "ada"}, headers=auth(tok["bob"])).status_code == 409
    assert c.post("/api/profile", json={"display_name": "<b>"}, headers=auth(tok["bob"])).status_code == 422
    assert c.post("/api/profile", json={"on_leaderboard": False}).status_code == 401
    assert [e["username"] for e in c.get("/api/leaderboard", headers=ada).json()["leaderboard"]][1] == "Bobby"
    c.post("/api/profile", json={"on_leaderboard": False}, headers=auth(tok["bob"]))
    assert len(c.get("/api/leaderboard", headers=ada).json()["leaderboard"]) == 1  # bob left
    assert [e["username"] for e in c.get("/api/leaderboard", headers=auth(tok["bob"])).json()["leaderboard"]] == [
        seen[0]["username"], "Bobby"]  # but still sees himself
    html = c.get("/", headers=ada).text
    assert "bob" not in html.replace("Bobby", "") and "(you)" in html and "/u/bob" not in html
    assert 'href="/u/bob"' in c.get("/", headers=prof).text


def test_stuck_and_quiet_with_a_fixed_clock(cls):
    c, app, tok = cls
    db, n = app.state.db, 20
    rows = list(classview.iter_students(db))
    # completion dates in upload_body: module m on 2025-11-(10+m); ada is on module 4 since 13 Nov, bob on 2 since 11 Nov
    s = classview.summarize(rows, n, days=7, now=datetime(2025, 11, 30))
    assert s["stuck"] == [{"username": "bob", "module": 2, "days": 18}, {"username": "ada", "module": 4, "days": 16}]
    assert classview.summarize(rows, n, days=30, now=datetime(2025, 11, 30))["stuck"] == []
    later = utc_now() + timedelta(days=9)  # nobody has uploaded for 9 days; cy never did, her account is 9 days old
    q = classview.summarize(rows, n, days=7, now=later)["quiet"]
    assert sorted((x["username"], x["days"], x["uploaded"]) for x in q) == [("ada", 9, True), ("bob", 9, True), ("cy", 9, False)]
    assert classview.summarize(rows, n, days=7)["quiet"] == []
    per = {m["module"]: m for m in s["modules"]}
    assert (per[1]["started"], per[1]["completed"], per[2]["completed"], per[4]["started"]) == (2, 2, 1, 0)


def test_class_page_sorts_filters_and_pages(cls):
    c, app, tok = cls
    prof = auth(tok["prof"])
    html = c.get("/class?sort=-modules", headers=prof).text
    assert html.index('href="/u/ada"') < html.index('href="/u/bob"') < html.index('href="/u/cy"')
    assert "CS &lt;101&gt;" in html and "<title>Class view · CS &lt;101&gt;</title>" in html
    assert 'aria-label="01 Tensor: completed 2025-11-11 10:00:00"' in html
    assert "never" in html  # cy's last activity
    html = c.get("/class?sort=modules", headers=prof).text
    assert html.index('href="/u/cy"') < html.index('href="/u/bob"')
    html = c.get("/class?name=B", headers=prof).text.split('id="stuck"')[0]  # the grid (stuck/quiet are the whole class)
    assert 'href="/u/bob"' in html and 'href="/u/ada"' not in html and "1 student matching" in html
    assert c.get("/class?sort=password", headers=prof).status_code == 422
    page = classview.class_page(app.state.db, "name", "", 2, 0)
    assert [r["username"] for r in page["rows"]] == ["ada", "bob"] and page["total"] == 3


def test_gradebook_csv_parses_back_with_hostile_names(cls):
    c, app, tok = cls
    with app.state.db.write() as conn:  # accounts from before the naming rule: anything at all
        for i, (name, uid) in enumerate([("=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example","x")'),
                                          ("@SUM(1)", 'a,b\n"c"'), ("-2+3", "\t+1"), ("ünï", "<script>x</script>")]):
            conn.execute(insert(User.__table__).values(username=name, user_id=uid, created_at=utc_now(), role="student", on_leaderboard=True))
    r = c.get("/api/class.csv", headers=auth(tok["prof"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, so spreadsheets read it as UTF-8
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    by = {x["username"]: x for x in rows}
    assert set(by) == {"ada", "bob", "cy", "'=cmd|' /C calc'!A0", "'@SUM(1)", "'-2+3", "ünï"}
    assert by["'=cmd|' /C calc'!A0"]["user_id"] == '\'=HYPERLINK("http://evil.example","x")'
    assert by["'@SUM(1)"]["user_id"] == 'a,b\n"c"' and by["'-2+3"]["user_id"] == "'\t+1"
    assert all(not v.startswith(("=", "+", "-", "@", "\t")) for x in rows for v in x.values())
    ada = by["ada"]
    assert ada["modules_completed"] == "3" and ada["module_03_completed"] == "2025-11-13T10:00:00Z" and ada["module_04_completed"] == ""
    assert ada["milestone_01_completed"] == "2025-11-16T15:00:00Z" and ada["milestone_02_completed"] == ""
    assert datetime.fromisoformat(ada["last_activity"].rstrip("Z")) and by["cy"]["last_activity"] == ""
    assert list(rows[0])[:5] == ["username", "user_id", "section", "modules_completed", "module_01_completed"]
    got = c.get("/api/class.json", headers=auth(tok["prof"])).json()
    assert {x["user_id"] for x in got} >= {'a,b\n"c"', "ada"} and len(got) == 7
    html = c.get("/class", headers=auth(tok["prof"])).text
    assert "<script>x" not in html and "&lt;script&gt;" not in html  # user ids are not on the grid; names escaped
    assert "ünï" in html
