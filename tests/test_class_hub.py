"""The class website as a JupyterHub service, with a stand-in hub (the real one: tests/test_hub_service.py), and the
class-running features around it — on SQLite and PostgreSQL:

- the site under the hub's path: pages send a browser to the hub's OAuth and back, every link and cookie under the path;
- hub tokens resolved by the hub and kept a minute; a forged token, another student's user id, a token without the
  service's scope, a hub that does not answer (503, so `tito sync` keeps the snapshot);
- roles from the hub (admins and the instructor group), our own tokens beside the hub's;
- `tito sync` in a single-user server: the hub's service list, the server's token, and no name of the client's own;
- sections from the roster on /class, the live version (instructors only) and the page's script.
"""
import json, re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import run_tito, uvicorn_thread
from test_server import auth, db_url, upload_body  # noqa: F401 (fixture)
from tinytorch_progress import server as srv
from tinytorch_progress.server.hub import HUB_COOKIE, Hub, HubConfig
from tinytorch_progress.server.roster import import_roster, read_roster

PREFIX = "/services/tito"
SCOPE = ["access:services!service=tito"]


class StandInHub:
    "Answers like `HubOAuth`: a table of tokens, codes that become tokens, and a switch to be down."
    login_url = "/hub/api/oauth2/authorize?client_id=service-tito&redirect_uri=%2Fservices%2Ftito%2Foauth_callback&response_type=code"
    hub_host, hub_prefix = "", "/hub/"

    def __init__(self):
        self.users, self.codes, self.asked, self.down = {}, {}, 0, False

    def user_for_token(self, token, use_cache=True):
        self.asked += 1
        if self.down: raise ConnectionError("Failed to connect to Hub API")
        return self.users.get(token)

    def token_for_code(self, code, code_verifier=None):
        if code not in self.codes or not code_verifier: raise RuntimeError("invalid_grant")
        return self.codes.pop(code)


@pytest.fixture
def site(db_url):
    hub_auth = StandInHub()
    hub_auth.users = {"t-ada": {"name": "ada", "admin": False, "groups": [], "scopes": SCOPE},
                      "t-bob": {"name": "bob", "admin": False, "groups": ["L02"], "scopes": SCOPE},
                      "t-prof": {"name": "prof", "admin": False, "groups": ["instructors"], "scopes": SCOPE},
                      "t-root": {"name": "root", "admin": True, "groups": [], "scopes": ["access:services"]},
                      "t-narrow": {"name": "ada", "admin": False, "groups": [], "scopes": ["read:users:name!user=ada"]}}
    cfg = HubConfig("tito", "http://hub:8081/hub/api", "svc-token", PREFIX, "service-tito", f"{PREFIX}/oauth_callback")
    app = srv.create_app(db_url, rate_limit=None, hub=Hub(cfg, hub_auth))
    yield TestClient(app, raise_server_exceptions=False), app, hub_auth
    app.state.db.engine.dispose()


def sign_in(c, hub_auth, token, page=f"{PREFIX}/"):
    "The browser's round trip: the site sends it to the hub, the hub sends it back with a code."
    r = c.get(page, headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"{PREFIX}/login?next=")
    r = c.get(r.headers["location"], follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith(StandInHub.login_url)
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["code_challenge_method"] == ["S256"] and q["code_challenge"][0]
    code = "code-" + token
    hub_auth.codes[code] = token
    return c.get(f"{PREFIX}/oauth_callback?code={code}&state={q['state'][0]}", follow_redirects=False)


def test_browsers_sign_in_through_the_hub(site):
    c, app, hub_auth = site
    r = sign_in(c, hub_auth, "t-ada", f"{PREFIX}/u/ada")
    assert r.status_code == 303 and r.headers["location"] == f"{PREFIX}/u/ada"
    cookie = r.headers["set-cookie"]
    assert f"{HUB_COOKIE}=t-ada" in cookie and f"Path={PREFIX}" in cookie and "HttpOnly" in cookie
    page = c.get(f"{PREFIX}/u/ada", headers={"accept": "text/html"})
    assert page.status_code == 200 and f'href="{PREFIX}/static/site.css"' in page.text and "Sign out ada" in page.text
    assert f'action="{PREFIX}/logout"' in page.text
    assert c.get(f"{PREFIX}/u/bob").status_code == 403 and c.get(f"{PREFIX}/class").status_code == 403
    out = c.post(f"{PREFIX}/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/hub/logout"
    assert c.get(f"{PREFIX}/u/ada").status_code == 401  # the cookie is gone


def test_a_sign_in_that_did_not_start_here_is_refused(site):
    c, _, hub_auth = site
    hub_auth.codes["stolen"] = "t-ada"
    r = c.get(f"{PREFIX}/oauth_callback?code=stolen&state=guess", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 403 and "did not start in this browser" in r.text and "Sign in with JupyterHub" in r.text
    assert HUB_COOKIE not in r.headers.get("set-cookie", "")


def test_roles_come_from_the_hub(site):
    c, app, hub_auth = site
    assert sign_in(c, hub_auth, "t-prof").status_code == 303
    assert c.get(f"{PREFIX}/class").status_code == 200
    assert c.get(f"{PREFIX}/class", headers=auth("t-root")).status_code == 200  # a hub admin
    assert c.get(f"{PREFIX}/class", headers=auth("t-bob")).status_code == 403  # another group: a student
    hub_auth.users["t-prof"] = hub_auth.users["t-prof"] | {"groups": []}  # left the group
    app.state.hub._cache.clear()  # (the hub is asked again within a minute)
    assert c.get(f"{PREFIX}/class", headers=auth("t-prof")).status_code == 403
    roles = {u["username"]: u["role"] for u in srv.list_users(app.state.db.engine)}
    assert roles == {"prof": "student", "root": "instructor", "bob": "student"}


def test_uploads_with_hub_tokens(site):
    c, app, hub_auth = site
    up = lambda body, tok: c.post(f"{PREFIX}/api/progress/upload", json=body, headers=auth(tok))
    r = up(upload_body((1, 2)), "t-ada")
    assert r.status_code == 201 and r.json()["user_id"] == "ada"
    assert up(upload_body((1, 2)), "t-ada").status_code == 200 and hub_auth.asked == 1  # the hub's answer is kept
    assert up(dict(upload_body((1,)), user_id="bob"), "t-ada").status_code == 403  # another student's user id
    assert up(upload_body((1,)), "forged").status_code == 401
    narrow = up(upload_body((1,)), "t-narrow")
    assert narrow.status_code == 403 and "access:services!service=tito" in narrow.json()["detail"]
    assert c.get(f"{PREFIX}/api/progress/ada", headers=auth("t-bob")).status_code == 403
    hub_auth.down = True
    down = up(upload_body((1,)), "t-root")  # a token the site has not asked about yet
    assert down.status_code == 503 and down.headers["retry-after"] == "10"  # `tito sync` keeps it for the next sync
    hub_auth.down = False
    local = srv.add_user(app.state.db.engine, "cy")  # our own tokens work beside the hub's
    assert up(upload_body((1,)), local).status_code == 201


def test_sync_in_a_single_user_server_finds_the_service(site, tmp_path, monkeypatch):
    "`tito sync` with the hub's environment and no login: the service list, the server's own token, no name of its own."
    c, app, hub_auth = site
    with uvicorn_thread(app) as url:
        hub_api = httpx.MockTransport(lambda req: httpx.Response(200, json={"tito": {"name": "tito", "url": url, "prefix": f"{PREFIX}/"}})
                                      if req.headers.get("authorization") == "token t-ada" else httpx.Response(403, json={}))
        real = httpx.HTTPTransport()
        class Route(httpx.BaseTransport):  # the hub's API is the stand-in; the site is the real one, over HTTP
            def handle_request(self, request):
                return (hub_api if request.url.host == "hub" else real).handle_request(request)
        for k, v in {"JUPYTERHUB_API_TOKEN": "t-ada", "JUPYTERHUB_API_URL": "http://hub:8081/hub/api", "JUPYTERHUB_USER": "bob"}.items():
            monkeypatch.setenv(k, v)
        for k in ("TITO_SERVER", "TITO_NO_SYNC", "JUPYTERHUB_SERVICE_NAME"): monkeypatch.delenv(k, raising=False)
        assert run_tito("init", tmp_path).returncode == 0
        assert run_tito("--root", tmp_path, "module", "complete", "01", "--skip-tests").returncode == 0
        from tinytorch_progress.sync import sync
        res = sync(tmp_path, retries=0, transport=Route())
        assert res.ok and res.server == f"{url}{PREFIX}" and res.user_id == "ada", res.message  # not JUPYTERHUB_USER's bob
        assert "server has 1/20 modules" in res.message
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t-bob")  # a token that may not list the services
        with pytest.raises(Exception, match="may not list the hub's services"): sync(tmp_path, retries=0, transport=Route())


def test_sections_and_the_live_view(site):
    c, app, hub_auth = site
    import_roster(app.state.db, read_roster("username,section\nada,L01\nbob,L02\n"), tokens=False)
    for tok, mods in (("t-ada", (1, 2)), ("t-bob", (1,))):
        assert c.post(f"{PREFIX}/api/progress/upload", json=upload_body(mods), headers=auth(tok)).status_code == 201
    prof = auth("t-prof")
    page = c.get(f"{PREFIX}/class?section=L02", headers=prof).text
    assert f'href="{PREFIX}/u/bob"' in page and f'href="{PREFIX}/u/ada"' not in page and "in section L02" in page
    assert '<option value="L02" selected>L02</option>' in page and "section=L02" in re.search(r'aria-sort="ascending"><a href="([^"]+)"', page).group(1)
    assert f'<script src="{PREFIX}/static/live.js" defer></script>' in page and f'data-live-url="{PREFIX}/api/class/version"' in page
    v1 = c.get(f"{PREFIX}/api/class/version", headers=prof)
    assert v1.status_code == 200 and v1.headers["cache-control"] == "no-store"
    assert c.get(f"{PREFIX}/api/class/version", headers=auth("t-ada")).status_code == 403
    assert c.post(f"{PREFIX}/api/progress/upload", json=upload_body((1, 2, 3)), headers=auth("t-ada")).status_code == 201
    assert c.get(f"{PREFIX}/api/class/version", headers=prof).json() != v1.json()  # the page will fetch itself again
    js = c.get(f"{PREFIX}/static/live.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    rows = c.get(f"{PREFIX}/api/class.csv", headers=prof).text.lstrip("\ufeff").splitlines()
    assert rows[0].startswith("username,user_id,section,") and rows[1].startswith("ada,ada,L01,3,")
