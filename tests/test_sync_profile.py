"""Leaderboard names (issue 15): `tito login --display-name/--no-leaderboard/--on-leaderboard` (`profile.set_profile`)
against the real website in process (tests/website.py): what other students see, taken names, leaving and coming back,
consent and names checked before anything is sent, and only the API's confirmation counts."""
import json, time

import pytest

from conftest import tito_main
from tinytorch_progress.errors import TitoError
from tinytorch_progress.profile import set_profile
from tinytorch_progress.sync import login
from website import PORTAL, api, network, site, sync_json, workspace  # noqa: F401 (fixtures)


def login_as(root, site, token, *extra):
    "`tito login` to `site` as the holder of `token`, in process."
    with network(site.transport): return tito_main("--root", root, "login", "--server", site.url, "--token", token, *extra)


@pytest.fixture
def two_students(tmp_path, site):
    "ada and bob, both with progress on the website, logged in without a leaderboard setting."
    toks = {n: site.add_user(n) for n in ("ada", "bob")}
    roots = {n: workspace(tmp_path, n, completed=[1, 2] if n == "ada" else [1]) for n in toks}
    for n in toks:
        login(roots[n], site.url, toks[n])
        assert sync_json(roots[n], site.transport)["ok"]
    return site, toks, roots


def test_a_chosen_name_is_what_other_students_see(two_students):
    site, toks, roots = two_students
    shown = site.board(toks["bob"])
    assert "ada" not in shown and all(n.startswith("student-") for n in shown)  # the default: a stable pseudonym
    assert site.board(toks["bob"]) == shown
    p = login_as(roots["ada"], site, toks["ada"], "--display-name", "Ada.L", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["profile"] == {"display_name": "Ada.L", "on_leaderboard": True}
    assert site.board(toks["bob"])[0] == "Ada.L" and site.board(toks["bob"])[1] == shown[1]
    posts = [r for r in site.requests if (r.method, r.url.path) == ("POST", "/api/profile")]
    assert [r.headers.get("authorization") for r in posts] == [f"Bearer {toks['ada']}"]
    p = login_as(roots["ada"], site, toks["ada"], "--display-name", "")  # back to her pseudonym
    assert p.returncode == 0 and f"On the leaderboard as {shown[0]}." in p.stdout, p.stdout + p.stderr
    assert site.board(toks["bob"]) == shown


def test_a_taken_name_is_one_line_and_exit_1(two_students):
    site, toks, roots = two_students
    assert login_as(roots["ada"], site, toks["ada"], "--display-name", "Ada.L").returncode == 0
    for name in ("Ada.L", "ada"):  # another student's chosen name, or another's username
        p = login_as(roots["bob"], site, toks["bob"], "--display-name", name)
        assert p.returncode == 1 and "taken" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert p.stdout == ""
    assert "Ada.L" in site.board(toks["ada"])
    p = login_as(roots["bob"], site, "tt_wrong", "--display-name", "Bobby")  # the server is the one to say the token is wrong
    assert p.returncode == 1 and "HTTP 401: invalid or revoked token; check the token" in p.stderr


def test_leaving_the_leaderboard_and_coming_back(two_students):
    site, toks, roots = two_students
    p = login_as(roots["ada"], site, toks["ada"], "--display-name", "Ada.L", "--no-leaderboard")
    assert p.returncode == 0 and "Not on the leaderboard." in p.stdout, p.stdout + p.stderr
    assert len(site.board(toks["bob"])) == 1 and "Ada.L" not in site.board(toks["bob"])  # omitted for others
    assert "Ada.L" in site.board(toks["ada"])  # she still sees herself
    p = login_as(roots["ada"], site, toks["ada"], "--on-leaderboard")
    assert p.returncode == 0 and "On the leaderboard as Ada.L." in p.stdout
    assert "Ada.L" in site.board(toks["bob"])
    p = login_as(roots["ada"], site, toks["ada"], "--no-leaderboard", "--on-leaderboard")
    assert p.returncode == 2 and "not allowed with argument" in p.stderr


def test_names_are_checked_and_consent_honoured_before_anything_is_sent(two_students, monkeypatch):
    site, toks, roots = two_students
    cfg = roots["ada"] / ".tito" / "config.json"
    before, sent = cfg.read_text(), len(site.requests)
    monkeypatch.setenv("TITO_NO_SYNC", "1")
    p = login_as(roots["ada"], site, toks["ada"], "--display-name", "Ada.L")
    assert p.returncode == 1 and p.stderr.strip() == "tito: error: leaderboard setting not sent: sync is disabled (TITO_NO_SYNC=1); nothing was sent"
    monkeypatch.delenv("TITO_NO_SYNC")
    for bad, why in (("<b>", "character '<'"), ("a" * 41, "41 characters (at most 40)")):
        p = login_as(roots["ada"], site, toks["ada"], "--display-name", bad)
        assert p.returncode == 1 and why in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert login_as(roots["ada"], site, toks["ada"], "--user-id", "ada").returncode == 0  # no setting asked: offline
    assert len(site.requests) == sent and json.loads(cfg.read_text()) == {**json.loads(before), "user_id": "ada"}


def test_plain_http_to_another_machine_is_refused_as_sync_does(tmp_path, monkeypatch):
    root = workspace(tmp_path)
    url = "http://192.0.2.1:8000"  # TEST-NET: no such machine; the refusal must come before any connection
    p = tito_main("--root", root, "login", "--server", url, "--token", "tt_x", "--display-name", "Ada.L")
    assert p.returncode == 1 and "refusing to send your token in clear to 192.0.2.1 over http://" in p.stderr
    monkeypatch.setenv("TITO_ALLOW_HTTP", "1")  # a login made on a network the student trusted...
    login(root, url, "tt_x")
    monkeypatch.delenv("TITO_ALLOW_HTTP")  # ...is not a licence to send the token in clear elsewhere
    t0 = time.monotonic()
    with pytest.raises(TitoError, match="refusing to send your token in clear"): set_profile(root, "Ada.L")
    assert time.monotonic() - t0 < 2


def test_a_portal_page_is_not_a_confirmation(tmp_path, api):
    root = workspace(tmp_path)
    api.upload_reply = (200, "text/html; charset=utf-8", PORTAL)
    p = login_as(root, api, "tt_x", "--display-name", "Ada.L")
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"leaderboard setting not confirmed by {api.url}: HTTP 200 with text/html, not the progress API's reply" in p.stderr
    assert api.seen == [("POST", "/api/profile", "Bearer tt_x")]
    api.upload_reply = (200, "application/json", b'{"display_name": "someone-else", "on_leaderboard": true}')
    p = login_as(root, api, "tt_x", "--display-name", "Ada.L")
    assert p.returncode == 1 and "does not match what was sent (display_name: sent 'Ada.L', reply 'someone-else')" in p.stderr
