"""`tito sync` (`sync.sync`) in process, against the real website and against servers that are not it (tests/website.py):
consent, retries and backoff, 5xx, 4xx, lost replies, timeouts, captive portals and proxies, servers that lie, and
the token kept secret. The outbox's order and its items set aside: test_sync_outbox.py; over real HTTP against
`tito serve`: test_sync_e2e.py."""
import json, socket, stat, time

import httpx
import pytest

from conftest import tito_main
from tinytorch_progress import tracker
from tinytorch_progress.errors import TitoError
from tinytorch_progress.outbox import Outbox
from tinytorch_progress.sync import Unreachable, login, request, sync
from website import OFFLINE, PORTAL, api, network, site, sync_json, workspace  # noqa: F401 (fixtures)


# ---------------------------------------------------------------- the real website

def test_sync_roundtrip_is_honest_and_idempotent(tmp_path, site):
    root = workspace(tmp_path, completed=[1, 2, 3])
    tracker.complete_milestone(root, "01")
    token = site.add_user("ada")
    login(root, site.url + "/", token)
    res = sync_json(root, site.transport)
    assert res["ok"] and res["user_id"] == "ada" and res["sent"] == 1 and res["queued"] == 0, res
    assert res["message"] == f"synced to {site.url} as ada: server has 3/20 modules, 1/6 milestones completed"
    assert json.loads((root / ".tito" / "config.json").read_text())["user_id"] == "ada"  # learned from the server
    assert [r.headers.get("authorization") for r in site.requests if r.method == "POST"] == [f"Bearer {token}"]
    assert site.get("/api/progress/ada", token).json()["module_progress"]["completed_modules"] == [1, 2, 3]
    # nothing changed: a second sync re-sends the same bytes and the server stores nothing new
    res = sync_json(root, site.transport)
    assert res["ok"] and res["message"].endswith("(already up to date)"), res
    assert site.snapshots("ada") == 1
    tracker.complete(root, 4, skip_tests=True)
    res = sync_json(root, site.transport)
    assert res["ok"] and "server has 4/20 modules" in res["message"] and site.snapshots("ada") == 2


def test_retries_5xx_then_succeeds(tmp_path, site):
    root = workspace(tmp_path, completed=[1])
    login(root, site.url, site.add_user("bob"), "bob")
    site.fail_uploads = 2
    res = sync_json(root, site.transport)
    assert res["ok"], res
    assert site.count("POST", "/api/progress/upload") == 3 and site.snapshots("bob") == 1


def test_5xx_exhausted_keeps_outbox(tmp_path, site):
    root = workspace(tmp_path, completed=[1])
    login(root, site.url, site.add_user("cy"), "cy")
    site.fail_uploads = 100
    res = sync_json(root, site.transport, retries=2)
    assert not res["ok"] and res["queued"] == 1
    assert site.count("POST", "/api/progress/upload") == 3  # 1 + 2 retries
    assert "HTTP 500: injected failure (after 3 attempts)" in res["message"]
    site.fail_uploads = 0
    res = sync_json(root, site.transport)
    assert res["ok"] and res["sent"] == 1 and res["queued"] == 0 and site.snapshots("cy") == 1


def test_no_retry_on_4xx(tmp_path, site):
    site.add_user("dee")
    root = workspace(tmp_path, completed=[1])
    login(root, site.url, "tt_wrong", "dee")
    res = sync_json(root, site.transport)
    assert not res["ok"] and res["queued"] == 1
    assert "HTTP 401: invalid or revoked token; check the token" in res["message"]
    assert site.count("POST", "/api/progress/upload") == 1 and site.snapshots() == 0


def test_body_refused_is_moved_aside(tmp_path, site):
    root = workspace(tmp_path, completed=[1])
    login(root, site.url, site.add_user("eve"), "mallory")
    res = sync_json(root, site.transport)
    assert not res["ok"] and res["queued"] == 0 and len(res["rejected"]) == 1 and "HTTP 403" in res["rejected"][0]
    assert site.count("POST", "/api/progress/upload") == 1
    assert len(list((root / ".tito" / "outbox" / "rejected").glob("*.json"))) == 1


def test_lost_reply_is_resent_and_stored_once(tmp_path, site):
    root = workspace(tmp_path, completed=[1, 2])
    login(root, site.url, site.add_user("gus"), "gus")
    site.lose_replies = 1  # stored, but the client sees a 502 and retries the same bytes
    res = sync_json(root, site.transport)
    assert res["ok"], res
    assert site.count("POST", "/api/progress/upload") == 2 and site.snapshots("gus") == 1
    assert len({r.headers["idempotency-key"] for r in site.requests if r.method == "POST"}) == 1
    # lost reply with no retry left: the item stays queued, is re-sent next time, still one row
    tracker.complete(root, 3, skip_tests=True)
    site.lose_replies = 1
    res = sync_json(root, site.transport, retries=0)
    assert not res["ok"] and res["queued"] == 1 and site.snapshots("gus") == 2
    res = sync_json(root, site.transport)
    assert res["ok"] and res["sent"] == 1 and site.snapshots("gus") == 2 and "(already up to date)" in res["message"]


def test_the_client_reads_the_reply_the_server_sends():
    "The client's `UploadReply` is the server's `UploadResult`, field for field, so the two cannot drift apart."
    from tinytorch_progress.schemas import UploadReply
    from tinytorch_progress.server.routes.api import UploadResult
    ours, theirs = UploadReply.model_json_schema(), UploadResult.model_json_schema()
    assert set(ours["properties"]) == set(theirs["properties"]) and set(ours["required"]) == set(theirs["required"])
    for name, prop in theirs["properties"].items():
        assert ours["properties"][name].get("type") == prop.get("type") and ours["properties"][name].get("enum") == prop.get("enum"), name


# ---------------------------------------------------------------- the network

def test_backoff_doubles_with_jitter_and_honours_retry_after():
    waits, answers = [], iter([httpx.Response(503), httpx.Response(503), httpx.Response(503, headers={"retry-after": "7"}),
                               httpx.Response(200)])
    with httpx.Client(transport=httpx.MockTransport(lambda r: next(answers))) as c:
        assert request(c, "GET", "https://x/", retries=3, backoff=0.5, sleep=waits.append).status_code == 200
    assert 0.375 <= waits[0] <= 0.625 and 0.75 <= waits[1] <= 1.25 and waits[2] == 7  # 0.5·2^k ± 25%, or the server's word
    with httpx.Client(transport=OFFLINE) as c:
        with pytest.raises(Unreachable, match=r"cannot connect \(\[Errno 111\] Connection refused\) \(after 2 attempts\)"):
            request(c, "GET", "https://x/", retries=1, backoff=0, sleep=waits.append)


def test_timeout_is_retried_then_queued(tmp_path):
    "A real socket that accepts connections and never answers: the client's own timeout ends each attempt."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); s.listen(16)
        root = workspace(tmp_path, completed=[1])
        t0 = time.monotonic()
        res = sync(root, f"http://127.0.0.1:{s.getsockname()[1]}", retries=1, backoff=0, timeout=0.3).to_json()
        assert not res["ok"] and res["queued"] == 1
        assert "timed out" in res["message"] and "after 2 attempts" in res["message"], res["message"]
        assert time.monotonic() - t0 < 10


# ---------------------------------------------------------------- servers that are not the website

def test_server_that_does_not_hold_the_upload_is_an_error(tmp_path, api):
    api.lie = True
    root = workspace(tmp_path, completed=[1, 2, 3, 4, 5, 6, 7])
    login(root, api.url, "tt_x", "ada")
    res = sync_json(root, api.transport)
    assert not res["ok"]
    assert res["message"].startswith(f"sync error: {api.url} does not hold what was sent (server has 0/20 modules")
    assert "completed modules: sent [1, 2, 3, 4, 5, 6, 7], server has []" in res["message"]
    assert res["server_has"]["modules_completed"] == 0
    api.lie = False
    res = sync_json(root, api.transport)
    assert res["ok"] and "server has 7/20 modules" in res["message"]


def test_consent(tmp_path, api, monkeypatch):
    root = workspace(tmp_path, completed=[1])
    with pytest.raises(TitoError, match="not syncing: no server configured"): sync(root, transport=api.transport)
    assert not (root / ".tito" / "outbox").exists()
    login(root, api.url, "tt_x", "ada")
    monkeypatch.setenv("TITO_NO_SYNC", "1")
    for server in (None, api.url):
        with pytest.raises(TitoError, match=r"sync is disabled \(TITO_NO_SYNC=1\)"): sync(root, server, transport=api.transport)
    assert api.seen == [] and not (root / ".tito" / "outbox").exists()
    monkeypatch.delenv("TITO_NO_SYNC")
    assert sync_json(root, api.transport)["ok"]
    assert [(m, a) for m, _, a in api.seen] == [("POST", "Bearer tt_x"), ("GET", "Bearer tt_x")]


# only the API's reply counts (issue 19, item 8)
@pytest.mark.parametrize("answer,why", [
    ((200, "text/html; charset=utf-8", PORTAL), "HTTP 200 with text/html, not the progress API's reply (a captive portal or a proxy?)"),
    ((200, "application/json", b""), "HTTP 200 with an empty body, not the progress API's reply"),
    ((204, "", b""), "HTTP 204 with no content type, not the progress API's reply"),
    ((200, "application/json", b'{"ok": true}'), "HTTP 200 with application/json that is not the progress API's reply (status: required field is missing"),
    ((201, "application/json", b'{"status": "stored", "user_id": "ada", "snapshot_id": 1, "latest": true, "modules_completed": 0,'
                                b' "milestones_completed": 0}'), "the server's reply does not match what was sent (modules_completed: sent 2, reply 0)"),
    ((200, "application/json", b'{"status": "stored", "status": "stored"}'), 'that is not the progress API\'s reply (line 1: duplicate key "status")'),
    ((201, "application/json", b'{"status": "stored", "user_id": "ad'), "that is not the progress API's reply (line 1 column"),
])
def test_a_2xx_that_is_not_the_apis_reply_keeps_the_outbox(tmp_path, api, answer, why):
    root = workspace(tmp_path, completed=[1, 2])
    login(root, api.url, "tt_x", "ada")
    api.upload_reply = answer
    res = sync_json(root, api.transport)
    assert not res["ok"] and res["sent"] == 0 and res["queued"] == 1, res
    assert res["message"].startswith(f"upload to {api.url} not confirmed: ") and why in res["message"], res["message"]
    assert res["message"].endswith("1 snapshot(s) kept in .tito/outbox/ and sent on the next sync") and "\n" not in res["message"]
    assert not (root / ".tito" / "last_sync.json").exists()
    with network(api.transport): p = tito_main("--root", root, "sync")  # the text form: one line
    assert p.returncode == 1 and len(p.stdout.strip().splitlines()) == 1 and p.stderr == ""
    api.upload_reply = None  # the portal is gone: the same snapshot is delivered once
    res = sync_json(root, api.transport)
    assert res["ok"] and res["queued"] == 0 and "server has 2/20 modules" in res["message"], res
    assert len(api.received) == 1


def test_an_error_page_that_is_not_the_apis_keeps_the_item_queued(tmp_path, api):
    root = workspace(tmp_path, completed=[1])
    login(root, api.url, "tt_x", "ada")
    api.upload_reply = (403, "text/html", b"<html>Forbidden by the proxy</html>")
    res = sync_json(root, api.transport)
    assert not res["ok"] and res["queued"] == 1 and res["rejected"] == [], res
    assert res["message"].startswith(f"upload refused by {api.url}: HTTP 403 (text/html, not the progress API's reply)")
    assert not (root / ".tito" / "outbox" / "rejected").exists()
    api.upload_reply = (302, "text/html", b"")
    res = sync_json(root, api.transport)
    assert not res["ok"] and res["queued"] == 1 and "HTTP 302" in res["message"] and "captive portal" in res["message"]
    api.upload_reply = (422, "application/json", json.dumps({"detail": "inconsistent upload: \x1b[31mred\nline"}).encode())
    res = sync_json(root, api.transport)  # the API's own refusal: the body moves aside, and the server's text stays on one clean line
    assert not res["ok"] and res["queued"] == 0 and res["rejected"][0].endswith("HTTP 422: inconsistent upload: [31mred line"), res


@pytest.mark.parametrize("held,why", [
    ((200, "text/html", PORTAL), "but the server's progress reply is text/html, not JSON"),
    ((200, "application/json", b'{"user_id": "ada"}'), "but the server's progress reply is not a combined export (timestamp: required field is missing"),
    ((200, "application/json", b"[1, 2]"), "but the server's progress reply is not a combined export ((top level): expected a JSON object"),
])
def test_a_progress_reply_that_is_not_an_export_is_an_error(tmp_path, api, held, why):
    root = workspace(tmp_path, completed=[1])
    login(root, api.url, "tt_x", "ada")
    api.held_reply = held
    res = sync_json(root, api.transport)
    assert not res["ok"] and res["sent"] == 1 and res["message"].startswith(f"uploaded to {api.url}, {why}"), res["message"]


# ---------------------------------------------------------------- the token

def test_token_file_is_0600_and_token_never_in_output(tmp_path, api, monkeypatch):
    root = workspace(tmp_path, completed=[1])
    token = "tt_very_secret_token_123"
    p = tito_main("--root", root, "login", "--server", "http://127.0.0.1:9", "--token", token, "--user-id", "ada")
    assert p.returncode == 0 and token not in p.stdout + p.stderr
    cfg = root / ".tito" / "config.json"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600 and json.loads(cfg.read_text())["token"] == token
    p = tito_main("--root", root, "login", "--server", "http://127.0.0.1:9", "--token", "-", input=token + "\n")
    assert p.returncode == 0 and json.loads(cfg.read_text())["token"] == token and token not in p.stdout
    outputs = [tito_main("--root", root, "export").stdout, tito_main("--root", root, "export", "-o", tmp_path / "e.json").stdout,
               (tmp_path / "e.json").read_text(), tito_main("--root", root, "status", "--json").stdout]
    monkeypatch.setenv("TITO_SYNC_RETRIES", "0")
    with network(OFFLINE): p = tito_main("--root", root, "sync", "--json")  # offline: queued
    res = json.loads(p.stdout)
    assert p.returncode == 1 and res["queued"] == 1
    outputs += [p.stdout, p.stderr] + [q.read_text() for q in Outbox(root).items()]
    assert all(token not in o for o in outputs)
    assert stat.S_IMODE(Outbox(root).items()[0].stat().st_mode) == 0o600
    # a --server other than the logged-in one never receives the token
    with network(api.transport): tito_main("--root", root, "sync", "--server", api.url)
    assert api.seen and all(auth is None for _, _, auth in api.seen)


def test_login_to_a_server_that_moved_keeps_the_token(tmp_path, site, monkeypatch):
    "The class website moved: the old address fails naming itself, `tito login --server NEW` keeps the saved token."
    root = workspace(tmp_path, completed=[1])
    gone = "https://old.example.edu"
    assert tito_main("--root", root, "login", "--server", gone, "--token", site.add_user("ada")).returncode == 0
    monkeypatch.setenv("TITO_SYNC_RETRIES", "0")
    with network(OFFLINE): p = tito_main("--root", root, "sync")
    assert p.returncode == 1 and gone in p.stdout and "`tito login --server NEW_URL` keeps your token" in p.stdout, p.stdout
    p = tito_main("--root", root, "login", "--server", site.url)
    assert p.returncode == 0 and "kept the token saved" in p.stdout, p.stdout + p.stderr
    res = sync_json(root, site.transport)
    assert res["ok"] and "server has 1/20 modules" in res["message"], res
    assert site.snapshots("ada") == 1 and res["not_sent"] == [] and res["superseded"] == [], res
