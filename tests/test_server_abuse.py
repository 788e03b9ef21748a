"""Regression tests for the website items of issue 28 (an adversarial pass against the website) and the website's
small items of issue 27, on SQLite and PostgreSQL. Each test failed on the code before the fix:

1. a revoke, a new token and a role change end every earlier browser session, for good;
2. module and milestone ids outside the course, and totals that disagree with it, are a 422 naming the field;
3. `--public` pages show chosen names and nobody who left the leaderboard;
7. a bounded history per student, a byte budget (429/413), `tito server stats`;
8. commits wait for the disk by default (`--fast-commit` opts out) — the crash itself: test_server_crash_pg.py;
17. (server side) an upload's newer minor version is stored and served as sent — this one passed before too;
9. login CSRF: `Origin: null`, no Origin, a foreign Referer are refused;
10. leaderboard names cannot enumerate usernames quickly, and a refusal does not say whose;
11. names compare case-folded and NFKC-normalised; 12. one holder per name under concurrency (a unique constraint);
13. NUL anywhere is a 422; 14. sign-ins are throttled, live sessions capped;
15. a full disk is a 503 with Retry-After (a database that is down: test_server_crash_pg.py);
18. `Cache-Control: private, no-store`; `/docs` and `/openapi.json` need a sign-in on a private site;
19. accounts with user ids from before the naming rule: `doctor`, `rename-id`, and instructors still read them;
27: the overview counts students only; a student who never uploaded is quiet; the 401 and 403 pages speak to a
browser; every `tito server` command names its database, and a missing default one is an error, not a new file.
Header and connection abuse (item 6) is test_server_connections.py; the randomised versions are in test_server_fuzz.py."""
import json, re, threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update

from conftest import run_tito
from test_server import assert_json_error, auth, db_url, upload_body  # noqa: F401 (fixture)
from tinytorch_progress import server as srv
from tinytorch_progress.errors import ApiError
from tinytorch_progress.server import ingest
from tinytorch_progress.timeutil import utc_now

pytestmark = pytest.mark.slow  # many sites, on both databases

HERE = {"origin": "http://testserver"}  # a form posted from the site's own pages
PAGE = {"accept": "text/html"}


def store(app, token, body):
    u = srv.user_for_token(app.state.db.engine, token)
    return srv.store_upload(app.state.db, u, srv.parse_upload(json.dumps(body).encode()))


@pytest.fixture
def site(db_url):
    "A private site: students ada (uploaded), bob (uploaded), cy (never uploaded); instructor prof."
    app = srv.create_app(db_url)
    eng = app.state.db.engine
    tok = {n: srv.add_user(eng, n) for n in ("ada", "bob", "cy")}
    tok["prof"] = srv.add_user(eng, "prof", role="instructor")
    store(app, tok["ada"], upload_body((1, 2, 3)))
    store(app, tok["bob"], upload_body((1,)))
    yield TestClient(app, raise_server_exceptions=False), app, tok
    eng.dispose()


def sign_in(c, token):
    "A browser's session cookie for `token` (signed in through the form)."
    c.cookies.clear()
    r = c.post("/login", data={"token": token}, headers=HERE, follow_redirects=False)
    assert r.status_code == 303, r.text
    return c.cookies["tito_session"]


def with_cookie(c, sid, url, **kw):
    c.cookies.clear(); c.cookies.set("tito_session", sid)
    return c.get(url, **kw)


# ---- 1. sessions end on revoke, new token and role change ------------------------------------------------------------

def test_revoke_then_a_new_token_does_not_bring_sessions_back(site):
    c, app, tok = site
    eng = app.state.db.engine
    old = sign_in(c, tok["prof"])
    assert [with_cookie(c, old, u).status_code for u in ("/class", "/api/class.csv")] == [200, 200]
    srv.revoke(eng, "prof")
    assert [with_cookie(c, old, u).status_code for u in ("/class", "/api/class.csv")] == [401, 401]
    new = srv.issue_token(eng, "prof")  # the issue's case: every cookie from before the revoke came back
    assert [with_cookie(c, old, u).status_code for u in ("/class", "/api/class.csv")] == [401, 401]
    assert with_cookie(c, sign_in(c, new), "/class").status_code == 200  # the new token signs in


def test_a_new_token_and_a_role_change_end_earlier_sessions(site):
    c, app, tok = site
    eng = app.state.db.engine
    before = sign_in(c, tok["ada"])
    srv.issue_token(eng, "ada")  # a lost token replaced: whoever has the old cookie is out
    assert with_cookie(c, before, "/u/ada").status_code == 401
    student = sign_in(c, tok["ada"])
    srv.set_role(eng, "ada", "instructor")
    assert with_cookie(c, student, "/class").status_code == 401  # signs in again, with the new rights
    assert with_cookie(c, sign_in(c, tok["ada"]), "/class").status_code == 200
    staff = sign_in(c, tok["ada"])
    srv.set_role(eng, "ada", "student")
    assert with_cookie(c, staff, "/class").status_code == 401 and with_cookie(c, staff, "/api/class.csv").status_code == 401


# ---- 2. counts beyond the course ---------------------------------------------------------------------------------------

def _beyond(n=999, stones=999):
    body = upload_body(tuple(range(1, n + 1)), tuple((f"{i:02d}", True) for i in range(1, min(stones, 99) + 1)), total=n)
    body["milestone_progress"]["total_milestones"] = stones
    body["milestone_progress"]["locked_milestones"] = []
    body["module_progress"]["completion_dates"] = {}
    return body


@pytest.mark.parametrize("change,field", [
    (lambda b: _beyond(), "module_progress.total_modules: 999, but the course has 20 modules"),
    (lambda b: b["module_progress"].update(total_modules=21, completion_percentage=9), "module_progress.total_modules: 21"),
    (lambda b: b["milestone_progress"]["unlocked_milestones"].append({"id": "07", "name": "x"})
     or b["milestone_progress"].update(unlocked_count=3, total_milestones=7), "milestone_progress.unlocked_milestones: milestone 07"),
    (lambda b: b["milestone_progress"].update(total_milestones=7), "milestone_progress.total_milestones: 7, but the course has 6"),
    (lambda b: b["module_progress"].update(last_worked="21"), "module_progress.last_worked: module 21 not in the course"),
    (lambda b: b["module_progress"]["completion_dates"].update({"40": "2025-11-11T10:00:00"}), "module_progress.completion_dates: module 40"),
    (lambda b: b["milestone_progress"]["locked_milestones"].append({"id": "99", "name": "x"})
     or b["milestone_progress"].update(total_milestones=7), "milestone_progress.locked_milestones: milestone 99"),
])
def test_counts_beyond_the_course_are_a_422_naming_the_field(site, change, field):
    c, app, tok = site
    body = upload_body((1, 2))
    body = change(body) or body
    r = c.post("/api/progress/upload", json=body, headers=auth(tok["cy"]))
    assert_json_error(r, 422)
    assert r.json()["detail"].startswith("outside the course: ") and field in r.json()["detail"], r.json()["detail"]
    lb = c.get("/api/leaderboard", headers=auth(tok["prof"])).json()["leaderboard"]
    assert [e["username"] for e in lb] == ["ada", "bob"] and lb[0]["modules_completed"] == 3  # nothing ranked first
    grid = c.get("/class", headers=auth(tok["prof"])).text
    assert grid.count('<th scope="col" class="m">') == 20  # the course's columns, not 999


def test_a_course_folder_sets_the_bounds(db_url, tmp_path):
    "A course whose curriculum has 3 modules: 3 is the total, module 4 is outside (`tito serve --course DIR`)."
    from tinytorch_progress.curriculum import load_curriculum
    (tmp_path / ".tito").mkdir()
    (tmp_path / ".tito" / "curriculum.json").write_text(json.dumps({"name": "Mini", "modules": [
        {"number": n, "slug": f"m{n}", "title": f"M{n}", "tier": "t"} for n in (1, 2, 3)], "milestones": []}))
    app = srv.create_app(db_url, curriculum=load_curriculum(tmp_path))
    try:
        t = srv.add_user(app.state.db.engine, "ada")
        c = TestClient(app)
        ok = upload_body((1, 2), (), total=3) | {"milestone_progress": {"total_milestones": 0, "unlocked_count": 0, "completed_count": 0}}
        assert c.post("/api/progress/upload", json=ok, headers=auth(t)).status_code == 201
        r = c.post("/api/progress/upload", json=upload_body((1, 2), (), total=20), headers=auth(t))
        assert r.status_code == 422 and "total_modules: 20, but the course has 3 modules" in r.json()["detail"]
    finally: app.state.db.engine.dispose()


# ---- 3. --public keeps chosen privacy --------------------------------------------------------------------------------

def test_public_pages_show_what_a_student_sees(db_url):
    app = srv.create_app(db_url, public=True)
    eng = app.state.db.engine
    try:
        tok = {n: srv.add_user(eng, n) for n in ("ada", "bob", "carol")}
        for n, mods in (("ada", (1, 2, 3)), ("bob", (1, 2)), ("carol", (1,))): store(app, tok[n], upload_body(mods))
        c = TestClient(app)
        assert c.post("/api/profile", json={"display_name": "Hidden.Bob", "on_leaderboard": False}, headers=auth(tok["bob"])).status_code == 200
        assert c.post("/api/profile", json={"display_name": "Ada.L"}, headers=auth(tok["ada"])).status_code == 200
        anon = c.get("/api/leaderboard").json()["leaderboard"]
        assert [e["username"] for e in anon][0] == "Ada.L" and len(anon) == 2  # bob left: not listed at all
        assert "bob" not in json.dumps(anon).lower() and not {"ada", "carol"} & {e["username"] for e in anon}
        assert anon == c.get("/api/leaderboard", headers=auth(tok["carol"])).json()["leaderboard"][:1] + anon[1:]
        page = c.get("/").text
        assert "Ada.L" in page and "Hidden.Bob" not in page and 'href="/u/ada"' not in page and ">bob<" not in page
        assert c.get("/u/bob").status_code == 401 and c.get("/api/progress/bob").status_code == 401  # as private as before
        assert c.get("/u/ada").status_code == 200  # a student on the leaderboard: open, as --public promises
    finally: eng.dispose()


# ---- 7. bounded storage per student ------------------------------------------------------------------------------------

def test_history_is_bounded(site, monkeypatch):
    c, app, tok = site
    app.state.limiter = None  # the upload rate limit is not what this is about
    t0 = utc_now() - timedelta(days=5)
    for i in range(60):  # 60 uploads over 5 days: the first of each earlier day and the latest 20 stay
        monkeypatch.setattr(ingest, "utc_now", lambda i=i: t0 + timedelta(hours=2 * i))
        assert c.post("/api/progress/upload", json=upload_body((1,), statistics={"total_study_time_hours": i}),
                      headers=auth(tok["cy"])).status_code == 201
    cy = srv.user_for_token(app.state.db.engine, tok["cy"])["pk"]
    with app.state.db.read() as conn:
        kept = conn.execute(select(srv.Snapshot.received_at).where(srv.Snapshot.user_pk == cy).order_by(srv.Snapshot.id)).scalars().all()
    latest = [t0 + timedelta(hours=2 * i) for i in range(40, 60)]
    assert kept[-20:] == latest and kept[0] == t0 and len(kept) == 20 + len({k.date() for k in kept[:-20]})
    assert len(kept) <= 20 + 5


def test_a_byte_budget_per_student(site):
    c, app, tok = site
    codes, last = [], None
    for i in range(30):  # padded bodies inside the rate limit: 200 kB each
        last = c.post("/api/progress/upload", json=upload_body((1,), padding=f"{i:04d}" + "x" * 200_000), headers=auth(tok["cy"]))
        codes.append(last.status_code)
    assert codes[:20] == [201] * 20 and set(codes[21:]) == {429}, codes
    assert_json_error(last, 429)
    assert "storage budget is spent (4 MiB of snapshots a day)" in last.json()["detail"] and int(last.headers["retry-after"]) > 60
    assert c.post("/api/progress/upload", json=upload_body((1, 2)), headers=auth(tok["ada"])).status_code == 201  # others unaffected


def test_server_stats_shows_sizes_by_table(site, db_url, tmp_path):
    c, app, tok = site
    r = run_tito("server", "stats", "--db", db_url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[1:]}
    assert table["snapshots"][0] == "2" and table["users"][0] == "4" and table["total"][-1] in ("kB", "MB")
    assert re.search(r"tito: database .* \(--db\)", r.stderr)
    rows = json.loads(run_tito("server", "stats", "--json", "--db", db_url, cwd=tmp_path).stdout)
    assert {t["table"]: t["rows"] for t in rows["tables"]}["standings"] == 2 and rows["bytes"] > 0


# ---- 8. durable commits by default -------------------------------------------------------------------------------------

def test_commits_wait_for_the_disk_by_default(db_url):
    for durable, want in ((None, ("on", 2)), (False, ("off", 1))):
        app = srv.create_app(db_url, **({} if durable is None else {"durable": durable}))
        try:
            with app.state.db.write() as conn:
                got = (conn.exec_driver_sql("SHOW synchronous_commit").scalar() if app.state.db.dialect == "postgresql"
                       else conn.exec_driver_sql("PRAGMA synchronous").scalar())
            assert got == (want[0] if app.state.db.dialect == "postgresql" else want[1]), (durable, got)
        finally: app.state.db.engine.dispose()


# ---- 17 (server side). a newer minor version is kept as sent ---------------------------------------------------------------

def test_a_newer_minor_version_is_stored_as_sent(site):
    c, app, tok = site
    assert c.post("/api/progress/upload", json=upload_body((1,), version="1.7"), headers=auth(tok["cy"])).status_code == 201
    assert c.get("/api/progress/cy", headers=auth(tok["cy"])).json()["version"] == "1.7"


# ---- 9. login CSRF -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{"origin": "null"}, {}, {"referer": "https://evil.example/page"},
                                     {"origin": "https://evil.example"}, {"origin": "null", "referer": "http://testserver/login"}])
def test_login_from_a_foreign_page_is_refused(site, headers):
    c, app, tok = site
    r = c.post("/login", data={"token": tok["ada"]}, headers=headers, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert c.post("/logout", headers=headers, follow_redirects=False).status_code == 403


def test_login_from_this_site(site):
    c, app, tok = site
    for headers in (HERE, {"referer": "http://testserver/login"}, {"origin": "https://class.example", "x-forwarded-host": "class.example"}):
        c.cookies.clear()
        assert c.post("/login", data={"token": tok["ada"]}, headers=headers, follow_redirects=False).status_code == 303
    assert c.get("/login").headers["referrer-policy"] == "same-origin"  # so a browser sends our forms' real Origin


# ---- 10, 11, 12. leaderboard names ---------------------------------------------------------------------------------------

def test_names_cannot_enumerate_the_class(site):
    c, app, tok = site
    codes = [c.post("/api/profile", json={"display_name": n}, headers=auth(tok["cy"])) for n in
             ("ada", "bob", "prof", "zed", "ADA", "Bob", "x1", "x2")]
    assert [r.status_code for r in codes[:5]] == [409, 409, 409, 200, 409] and {r.status_code for r in codes[5:]} == {429}
    refused = [r.json()["detail"] for r in codes[:5] if r.status_code == 409]
    assert all(not re.search(r"\b(ada|bob|prof)\b", d.split("'")[2], re.I) for d in refused), refused  # never whose
    assert "is taken (or too like a name in use); choose another" in codes[0].json()["detail"]
    assert 1 <= int(codes[-1].headers["retry-after"]) <= 120 and "too many profile changes" in codes[-1].json()["detail"]


@pytest.mark.parametrize("name", ["Bob", "BOB", "bOb", "Prof", "PROF", "Ada.L", "ADA.L", "ada.l", "CY"])
def test_look_alike_names_are_taken(site, name):
    c, app, tok = site
    assert c.post("/api/profile", json={"display_name": "Ada.L"}, headers=auth(tok["ada"])).status_code == 200
    r = c.post("/api/profile", json={"display_name": name}, headers=auth(tok["bob" if name.lower() != "bob" else "cy"]))
    assert_json_error(r, 409)


def test_one_holder_per_name_under_concurrency(db_url):
    app = srv.create_app(db_url)  # set_profile directly: the race is in the database, not the route
    eng = app.state.db.engine
    try:
        pks = [srv.user_for_token(eng, srv.add_user(eng, f"s{i:02d}"))["pk"] for i in range(16)]
        for trial in range(5):
            name, barrier = f"Champion{trial}", threading.Barrier(16)
            def claim(pk):
                barrier.wait()
                try: return srv.set_profile(eng, pk, display_name=name)["display_name"] == name
                except ApiError as e: assert e.status == 409, e; return False
            with ThreadPoolExecutor(16) as ex: won = list(ex.map(claim, pks))
            with app.state.db.read() as conn:
                holders = conn.execute(select(func.count()).select_from(srv.User.__table__)
                                       .where(func.lower(srv.User.display_name) == name.lower())).scalar()
            assert (sum(won), holders) == (1, 1), (trial, sum(won), holders)
    finally: eng.dispose()


# ---- 13. NUL -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/class?name=%00", "/class?sort=%00", "/?metric=%00", "/api/leaderboard?metric=%00", "/u/a%00b",
                                 "/api/progress/a%00", "/api/class.csv?x=%00", "/login?next=/%00"])
def test_nul_is_a_422_everywhere(site, url):
    c, app, tok = site
    assert_json_error(c.get(url, headers=auth(tok["prof"])), 422)


def test_nul_in_a_form_or_cookie_is_a_422(site):
    c, app, tok = site
    assert_json_error(c.post("/login", data={"token": "tt_\x00"}, headers=HERE), 422)
    assert_json_error(c.post("/login", content=b"token=a%00b", headers=HERE | {"content-type": "application/x-www-form-urlencoded"}), 422)
    assert_json_error(c.get("/", headers={"cookie": "tito_session=a\x00b"}), 422)


# ---- 14. sign-in throttling -----------------------------------------------------------------------------------------------

def test_bad_sign_ins_are_throttled_per_client(site):
    c, app, tok = site
    codes = [c.post("/login", data={"token": f"tt_guess{i}"}, headers=HERE).status_code for i in range(35)]
    assert codes[:30] == [401] * 30 and set(codes[30:]) == {429}, codes
    r = c.post("/login", data={"token": tok["ada"]}, headers=HERE, follow_redirects=False)
    assert r.status_code == 429 and "Too many sign-ins from this address" in r.text and int(r.headers["retry-after"]) >= 1


def test_sign_ins_are_throttled_per_token_and_sessions_capped(site):
    c, app, tok = site
    app.state.limits = srv.site_limiters(login_client=(1000, 1000.0))  # many clients behind one address
    codes = [c.post("/login", data={"token": tok["ada"]}, headers=HERE, follow_redirects=False).status_code for _ in range(14)]
    assert codes[:10] == [303] * 10 and set(codes[10:]) == {429}, codes
    with app.state.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(srv.Session.__table__)).scalar() <= srv.SESSIONS_PER_USER
    assert c.post("/login", data={"token": tok["bob"]}, headers=HERE, follow_redirects=False).status_code == 303  # bob's own bucket


# ---- 15. a full disk is a 503 ------------------------------------------------------------------------------------------

def test_a_full_disk_is_a_503_and_then_passes(tmp_path):
    app = srv.create_app(f"sqlite:///{tmp_path / 'full.db'}")
    eng = app.state.db.engine
    try:
        t = srv.add_user(eng, "ada")
        c = TestClient(app, raise_server_exceptions=False)
        def full(dbapi_conn, _): dbapi_conn.execute("PRAGMA max_page_count = 1")  # below the current size: no page may be added
        eng.dispose(); event.listen(eng, "connect", full)
        r = c.post("/api/progress/upload", json=upload_body(padding="x" * 20_000), headers=auth(t))
        assert_json_error(r, 503)
        assert r.headers["retry-after"] == "30" and "database is unavailable" in r.json()["detail"]
        event.remove(eng, "connect", full); eng.dispose()
        assert c.post("/api/progress/upload", json=upload_body(padding="x" * 20_000), headers=auth(t)).status_code == 201
    finally: eng.dispose()


# ---- 18. private caching and private docs ------------------------------------------------------------------------------

def test_private_pages_are_not_cached(site):
    c, app, tok = site
    prof = auth(tok["prof"])
    for url in ("/u/ada", "/class", "/api/progress/ada", "/api/class.csv", "/api/class.json", "/", "/api/leaderboard"):
        assert c.get(url, headers=prof).headers.get("cache-control") == "private, no-store", url
    assert c.get("/u/ada").headers.get("cache-control") == "private, no-store"  # the 401 too
    assert "private" not in c.get("/static/site.css").headers.get("cache-control", "")


def test_api_docs_need_a_sign_in_on_a_private_site(site, db_url):
    c, app, tok = site
    assert [c.get(u).status_code for u in ("/docs", "/openapi.json", "/redoc")] == [401, 401, 401]
    assert c.get("/docs", headers=PAGE).status_code == 401 and 'action="/login"' in c.get("/docs", headers=PAGE).text
    assert c.get("/openapi.json", headers=auth(tok["ada"])).json()["info"]["title"] == "tinytorch-progress"
    assert "swagger" in c.get("/docs", headers=auth(tok["ada"])).text.lower()
    public = srv.create_app(db_url, public=True)
    try: assert TestClient(public).get("/openapi.json").status_code == 200
    finally: public.state.db.engine.dispose()


# ---- 19. accounts from before the naming rule ------------------------------------------------------------------------------

@pytest.mark.parametrize("old,suggested", [("Ben Smith", "Ben.Smith"), ("élodie", "elodie")])
def test_old_user_ids_are_read_listed_and_renamed(site, db_url, tmp_path, old, suggested):
    c, app, tok = site
    with app.state.db.write() as conn:
        for t in (srv.User.__table__, srv.Standing.__table__):
            conn.execute(update(t).where(t.c.username == "ada").values(user_id=old))
    prof = auth(tok["prof"])
    from urllib.parse import quote
    r = c.get(f"/api/progress/{quote(old)}", headers=prof)
    assert r.status_code == 200 and r.json()["module_progress"]["completed_count"] == 3  # instructors still read it
    assert c.get(f"/api/progress/{quote(old)}", headers=auth(tok["bob"])).status_code == 422  # nobody else learns more
    up = c.post("/api/progress/upload", json=upload_body((1, 2, 3, 4)), headers=auth(tok["ada"]))
    assert_json_error(up, 422)
    assert "tito server rename-id" in up.json()["detail"]
    d = run_tito("server", "doctor", "--db", db_url, cwd=tmp_path)
    assert d.returncode == 0 and "user id of ada" in d.stdout and f"rename-id {suggested}" not in d.stdout, d.stdout
    assert f" {suggested}" in d.stdout.splitlines()[2] and "tito server rename-id" in d.stdout
    r = run_tito("server", "rename-id", old, suggested, "--db", db_url, cwd=tmp_path)
    assert r.returncode == 0 and f"is now user id {suggested}" in r.stdout, r.stderr
    assert c.post("/api/progress/upload", json=upload_body((1, 2, 3, 4)), headers=auth(tok["ada"])).status_code == 201
    assert c.get(f"/api/progress/{suggested}", headers=prof).json()["user_id"] == suggested
    assert run_tito("server", "doctor", "--db", db_url, cwd=tmp_path).stdout.strip() == "nothing to fix"


# ---- issue 27: counts, quiet, the 401 and 403 pages, which database ----------------------------------------------------------

def test_the_overview_counts_students_like_the_class_view(site):
    c, app, tok = site
    assert "2 of 3 students have uploaded progress." in c.get("/", headers=auth(tok["prof"])).text
    assert "3 students;" in c.get("/class", headers=auth(tok["prof"])).text


def test_a_student_who_never_uploaded_is_quiet(site):
    c, app, tok = site
    quiet = c.get("/class", headers=auth(tok["prof"])).text.split('id="quiet"')[1].split("</table>")[0]
    assert 'href="/u/cy"' in quiet and "never uploaded" in quiet and 'href="/u/ada"' not in quiet


def test_the_401_and_403_pages_speak_to_a_browser(site):
    c, app, tok = site
    r = c.get("/class", headers=PAGE)
    assert r.status_code == 401 and "Sign in with your token to see this page." in r.text and "Authorization" not in r.text
    r = c.get("/class", headers=PAGE | auth(tok["ada"]))
    assert r.status_code == 403 and "<h1>Not allowed</h1>" in r.text and "Not yours" not in r.text
    assert "Not allowed: only instructors may see this." in r.text
    assert "you may see only your own progress" in c.get("/u/bob", headers=PAGE | auth(tok["ada"])).text


def test_server_commands_use_the_database_tito_serve_recorded(tmp_path):
    import socket, subprocess, sys, time
    r = run_tito("server", "list-users", cwd=tmp_path)  # nothing recorded, no default file
    assert r.returncode == 1 and r.stderr.startswith("tito: error: no database at tito-server.db (the default)"), r.stderr
    assert not (tmp_path / "tito-server.db").exists()
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    serve = subprocess.Popen([sys.executable, "-m", "tinytorch_progress.cli.main", "serve", "--db", "class.db", "--port", str(port)],
                             cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / ".tito" / "server.json").exists():
            assert serve.poll() is None and time.monotonic() < deadline, serve.stderr.read()
            time.sleep(0.1)
        r = run_tito("server", "add-user", "ada", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stderr.strip() == f"tito: database sqlite:///{(tmp_path / 'class.db').resolve()} (recorded by `tito serve` in .tito/server.json)"
        r = run_tito("server", "list-users", "--json", cwd=tmp_path)
        assert [u["username"] for u in json.loads(r.stdout)] == ["ada"] and "class.db" in r.stderr
        r = run_tito("server", "revoke", "nobody", cwd=tmp_path)
        assert r.returncode == 1 and r.stderr.startswith("tito: error: no such user: 'nobody'") and "[database sqlite:///" in r.stderr
        assert not (tmp_path / "tito-server.db").exists()
    finally:
        serve.terminate(); serve.wait(20)
    (tmp_path / "class.db").unlink()
    r = run_tito("server", "list-users", cwd=tmp_path)  # the recorded database went away: an error naming it
    assert r.returncode == 1 and "class.db (recorded by `tito serve`" in r.stderr and not (tmp_path / "class.db").exists()
