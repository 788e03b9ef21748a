"""The private site in a real browser (Playwright driving Debian's chromium, JavaScript off — the pages must work
without it): an instructor signs in with their token, sees the class grid, sorts it, opens a student; the pages fit a
390 px wide phone without horizontal scrolling and follow a dark colour scheme. Screenshots go to test-output/."""
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
ARGS = ["--no-sandbox", "--headless=new"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "A private site: 30 students with varied progress, one instructor; (url, tokens)."
    import uvicorn
    app = srv.create_app(f"sqlite:///{tmp_path_factory.mktemp('cls') / 'class.db'}", course_name="CS 101: Build a torch", rate_limit=None)
    db, eng = app.state.db, app.state.db.engine
    tokens = {"prof": srv.add_user(eng, "prof", role="instructor")}
    for i in range(30):
        name = f"student{i:02d}" if i else "a-very-long-student-name-that-could-overflow@university.example"
        tokens[name] = tok = srv.add_user(eng, name)
        body = upload_body(tuple(range(1, 1 + i % 21)))
        srv.store_upload(db, srv.user_for_token(eng, tok), srv.parse_upload(json.dumps(body).encode()))
    with uvicorn_thread(app) as url:
        yield url, tokens
    eng.dispose()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def signed_in(browser, url, token, **ctx):
    "A page of a new browser context, signed in through the form."
    context = browser.new_context(java_script_enabled=False, **ctx)
    page = context.new_page()
    r = page.goto(url + "/class")
    assert r.status == 401 and page.locator("#token").count() == 1  # the sign-in form, not the class
    page.fill("#token", token)
    page.click("button[type=submit] >> text=Sign in")
    return page


def overflow(page) -> int:
    "How many CSS pixels the page is wider than its viewport (0: no horizontal scrolling)."
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_sign_in_grid_sort_and_open_a_student(site, browser):
    url, tokens = site
    page = signed_in(browser, url, tokens["prof"], viewport={"width": 1200, "height": 900})
    assert page.url == url + "/class" and page.title() == "Class view · CS 101: Build a torch"
    cookie = next(c for c in page.context.cookies() if c["name"] == "tito_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time()
    assert tokens["prof"] not in page.url
    grid = page.locator("#grid")
    assert grid.locator("tbody tr").count() == 30 and grid.locator("thead th").count() == 1 + 20 + 3
    assert grid.locator("tbody th a").first.inner_text().startswith("a-very-long")  # by name
    first_cell = grid.locator("tbody tr").nth(1).locator("td.m span").first
    assert first_cell.get_attribute("tabindex") == "0" and first_cell.get_attribute("aria-label").startswith("01 Tensor: completed")
    OUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUT / "class-view.png"), full_page=True)
    page.click("#grid thead >> text=Modules")
    assert "sort=-modules" in page.url and page.locator("#grid thead th[aria-sort=descending]").inner_text() == "Modules"
    assert page.locator("#grid tbody tr").first.locator("td.n").first.inner_text() == "20"
    page.click("#grid thead >> text=Modules")  # again: ascending
    assert page.locator("#grid tbody tr").first.locator("td.n").first.inner_text() == "0"
    page.fill("#name", "student1")
    page.click("button >> text=Filter")
    assert page.locator("#grid tbody tr").count() == 10
    page.click("#grid >> text=student15")
    assert page.url == url + "/u/student15" and page.locator("h1").inner_text() == "student15"
    assert "Study time" in page.inner_text("#study")
    page.click("text=Sign out prof")
    assert page.url == url + "/login" and page.goto(url + "/class").status == 401
    page.context.close()


def test_a_student_sees_only_their_own(site, browser):
    url, tokens = site
    page = signed_in(browser, url, tokens["student05"])
    assert page.goto(url + "/class").status == 403
    assert page.goto(url + "/u/student06").status == 403
    assert page.goto(url + "/u/student05").status == 200
    r = page.goto(url + "/")
    assert r.status == 200 and "student06" not in page.inner_text("#leaderboard") and "(you)" in page.inner_text("#leaderboard")
    page.context.close()


@pytest.mark.parametrize("path", ["/class", "/", "/u/student20", "/login"])
def test_narrow_phone_without_horizontal_overflow(site, browser, path):
    url, tokens = site
    page = signed_in(browser, url, tokens["prof"], viewport={"width": 390, "height": 844}, is_mobile=True, device_scale_factor=2)
    if path == "/login": page.context.clear_cookies()
    page.goto(url + path)
    assert overflow(page) <= 0, f"{path} is wider than 390 px"
    page.screenshot(path=str(OUT / f"narrow{path.replace('/', '-') or '-root'}.png"), full_page=True)
    page.context.close()


def test_dark_scheme(site, browser):
    url, tokens = site
    page = signed_in(browser, url, tokens["prof"], color_scheme="dark", viewport={"width": 1000, "height": 800})
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    fg = page.evaluate("getComputedStyle(document.body).color")
    lum = lambda rgb: sum(int(x) for x in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]) / 3
    assert lum(bg) < 60 and lum(fg) > 180, (bg, fg)
    page.screenshot(path=str(OUT / "class-view-dark.png"), full_page=True)
    light = browser.new_context(java_script_enabled=False, color_scheme="light").new_page()
    light.goto(url + "/login")
    assert lum(light.evaluate("getComputedStyle(document.body).backgroundColor")) > 200
    light.context.close(); page.context.close()



def test_class_view_updates_itself_during_a_lab(site, browser, monkeypatch):
    "With JavaScript on: a student syncs, and the open class view shows it without a reload (the filter and focus kept)."
    import httpx
    from tinytorch_progress.server import live
    monkeypatch.setattr(live, "LIVE_EVERY", 2.0)  # checks every 2 s instead of 15
    url, tokens = site
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)  # a refused script or fetch
    page.goto(url + "/class")
    page.fill("#token", tokens["prof"]); page.click("button[type=submit] >> text=Sign in")
    page.goto(url + "/class?name=student05")
    row = page.locator("#grid tbody tr").first
    assert row.locator("td.n").first.inner_text() == "5"
    page.fill("#name", "typed, not submitted")  # the filter form is outside the part that is swapped
    page.evaluate("window.notReloaded = true")
    r = httpx.post(url + "/api/progress/upload", json=upload_body(tuple(range(1, 13))), headers={"Authorization": f"Bearer {tokens['student05']}"})
    assert r.status_code == 201, r.text
    from playwright.sync_api import expect  # (not wait_for_function: the site's CSP refuses eval, as it should)
    expect(page.locator("#grid tbody tr").first.locator("td.n").first).to_have_text("12", timeout=20_000)
    assert page.evaluate("window.notReloaded") is True and page.input_value("#name") == "typed, not submitted"
    assert page.locator("#live-status").inner_text().startswith("Updated")
    assert not errors, errors
    context.close()
