"""The dashboard of a `--public` site in a real browser: Playwright drives Debian's chromium (found on PATH) with
JavaScript disabled — the pages must work without it — against the app served by uvicorn on 127.0.0.1. Screenshots go
to test-output/. The private site (sign-in, the class view) is tests/test_class_browser.py."""
import json, shutil, socket, threading, time
from pathlib import Path

import pytest

from conftest import uvicorn_thread
from test_server import upload_body
from tinytorch_progress import server as srv

CHROMIUM = shutil.which("chromium")
OUT = Path(__file__).resolve().parents[1] / "test-output"
pytestmark = [pytest.mark.slow, pytest.mark.browser,  # a real browser against a served site
              pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` on PATH (Debian: apt-get install chromium)")]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import uvicorn
    app = srv.create_app(f"sqlite:///{tmp_path_factory.mktemp('dash') / 'class.db'}", public=True)
    db, eng = app.state.db, app.state.db.engine
    students = [("grace", (1, 2, 3, 4, 5, 6, 7), (("01", True), ("02", True), ("03", False))),
                ("alan", (1, 2, 3, 4, 5, 6, 7), (("01", True), ("02", False), ("03", False))),
                ("ada", (1, 2, 3), (("01", True), ("02", False))),
                ("mallory", (1,), (("01", False),))]
    for name, mods, stones in students:
        tok = srv.add_user(eng, name)
        body = upload_body(mods, stones)
        if name == "mallory":
            body["milestone_progress"]["unlocked_milestones"][0]["name"] = "<b>bold</b><script>document.title='pwned'</script>"
        srv.store_upload(db, srv.user_for_token(eng, tok), srv.parse_upload(json.dumps(body).encode()))
    srv.add_user(eng, "newcomer")  # no upload yet
    with uvicorn_thread(app) as url:
        yield url
    eng.dispose()


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(java_script_enabled=False, viewport={"width": 1100, "height": 900})
        yield ctx.new_page()
        ctx.close(); browser.close()


def cells(page, selector):
    return [[c.strip() for c in r.locator("td").all_inner_texts()] for r in page.locator(f"{selector} tbody tr").all()]


def test_class_overview(site, page):
    r = page.goto(site + "/")
    assert r.status == 200 and page.title() == "Class progress · TinyTorch"
    assert cells(page, "#leaderboard") == [["1", "grace", "7", "2"], ["1", "alan", "7", "1"], ["3", "ada", "3", "1"],
                                           ["4", "mallory", "1", "0"]]
    dist = {int(r[0]): int(r[1]) for r in cells(page, "#distribution")}
    assert dist[7] == 2 and dist[3] == 1 and dist[1] == 1 and dist[0] == 0 and len(dist) == 21
    stones = {r[0]: (int(r[2]), int(r[3])) for r in cells(page, "#milestones")}
    assert stones["01"] == (4, 3) and stones["02"] == (3, 1) and stones["03"] == (2, 0) and stones["06"] == (0, 0)
    assert "4 of 5 students have uploaded progress." in page.inner_text("main")
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "dashboard-overview.png"), full_page=True)
    page.click("text=by milestones")
    assert [r[1] for r in cells(page, "#leaderboard")] == ["grace", "alan", "ada", "mallory"]
    assert [r[0] for r in cells(page, "#leaderboard")] == ["1", "2", "2", "4"]


def test_user_page_by_following_the_link(site, page):
    page.goto(site + "/")
    page.click("#leaderboard >> text=ada")
    assert page.url == site + "/u/ada"
    assert page.locator("h1").inner_text() == "ada"
    mods = cells(page, "#modules")
    assert len(mods) == 20
    assert [m[0] for m in mods if m[2] == "completed"] == ["01", "02", "03"]
    assert mods[0][1] == "Tensor"
    assert cells(page, "#milestones")[:2] == [["01", "Milestone 01", "completed", "2025-11-15 10:00:00", "2025-11-16 15:00:00"],
                                              ["02", "Milestone 02", "unlocked", "2025-11-15 10:00:00", ""]]
    assert "3/20 modules (15%)" in page.inner_text("main") and "Rank 3 by modules" in page.inner_text("main")
    page.screenshot(path=str(OUT / "dashboard-user.png"), full_page=True)


def test_user_text_is_shown_as_text(site, page):
    page.goto(site + "/u/mallory")
    assert page.title() == "mallory · TinyTorch"
    assert cells(page, "#milestones")[0][1] == "<b>bold</b><script>document.title='pwned'</script>"
    assert page.locator("#milestones b").count() == 0 and page.locator("script").count() == 0
    page.screenshot(path=str(OUT / "dashboard-escaped.png"), full_page=True)


def test_unknown_user_and_no_upload(site, page):
    r = page.goto(site + "/u/nobody")
    assert r.status == 404 and "Not found" in page.inner_text("h1")
    r = page.goto(site + "/u/newcomer")
    assert r.status == 200 and "No progress uploaded yet." in page.inner_text("main")
