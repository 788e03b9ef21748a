"""`tito login` and `tito sync` end to end: the real entry point in subprocesses, over real HTTP, against the real
`tito serve` on 127.0.0.1 with users from the real `tito server add-user`. Every other sync behaviour is tested in
process (test_sync*.py); these check that the pieces hold together on a real network."""
import json, stat

import httpx
import pytest

from conftest import free_port, run_tito, tito_serve
from tinytorch_progress import tracker

pytestmark = pytest.mark.slow

FAST = {"TITO_SYNC_BACKOFF": "0.01", "TITO_SYNC_TIMEOUT": "5"}


def tito(*args, **env):
    return run_tito(*args, env={**FAST, **env})


def add_user(site, name) -> str:
    p = run_tito("server", "add-user", name, "--json", cwd=site)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["token"]


def workspace(tmp_path, name, completed):
    root = tmp_path / name
    (root / ".tito").mkdir(parents=True)
    for n in completed: tracker.complete(root, n, skip_tests=True)
    return root


def held(url, token, user_id) -> dict:
    r = httpx.get(f"{url}/api/progress/{user_id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def board(url, token) -> list[str]:
    r = httpx.get(f"{url}/api/leaderboard", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return [e["username"] for e in r.json()["leaderboard"]]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    "A private `tito serve` (the default) with its database in an empty folder."
    site = tmp_path_factory.mktemp("site")
    with tito_serve(site) as (url, _): yield url, site


def test_login_sync_and_resync(served, tmp_path):
    url, site = served
    token = add_user(site, "ada")
    root = workspace(tmp_path, "ada", [1, 2, 3])
    tracker.complete_milestone(root, "01")
    p = tito("--root", root, "login", "--server", url + "/", "--token", token)
    assert p.returncode == 0 and token not in p.stdout + p.stderr, p.stderr
    p = tito("--root", root, "sync")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == f"synced to {url} as ada: server has 3/20 modules, 1/6 milestones completed"
    cfg = root / ".tito" / "config.json"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600 and json.loads(cfg.read_text())["user_id"] == "ada"
    p = tito("--root", root, "sync", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["message"].endswith("(already up to date)"), p.stdout
    tracker.complete(root, 4, skip_tests=True)
    p = tito("--root", root, "sync")
    assert p.returncode == 0 and "server has 4/20 modules" in p.stdout, p.stdout + p.stderr
    assert held(url, token, "ada")["module_progress"]["completed_modules"] == [1, 2, 3, 4]


def test_offline_then_the_server_comes_up(tmp_path):
    port = free_port()  # nothing listens here yet
    url = f"http://127.0.0.1:{port}"
    root = workspace(tmp_path, "fay", [1])
    p = tito("--root", root, "sync", "--json", "--server", url, TITO_SYNC_RETRIES="1")
    res = json.loads(p.stdout)
    assert p.returncode == 1 and res["queued"] == 1 and res["message"].startswith(f"server {url} unreachable: cannot connect"), res
    tracker.complete(root, 2, skip_tests=True)
    p = tito("--root", root, "sync", "--json", "--server", url, TITO_SYNC_RETRIES="0")
    assert p.returncode == 1 and json.loads(p.stdout)["queued"] == 2
    site = tmp_path / "site"; site.mkdir()
    with tito_serve(site, port=port):  # the server comes up
        token = add_user(site, "fay")
        assert tito("--root", root, "login", "--server", url, "--token", token, "--user-id", "fay").returncode == 0
        p = tito("--root", root, "sync", "--json")
        res = json.loads(p.stdout)
        assert p.returncode == 0 and res["sent"] == 2 and res["queued"] == 0 and "server has 2/20 modules" in res["message"], res
        assert held(url, token, "fay")["module_progress"]["completed_modules"] == [1, 2]


def test_a_leaderboard_name(served, tmp_path):
    url, site = served
    toks = {n: add_user(site, n) for n in ("lin", "max")}
    roots = {n: workspace(tmp_path, n, [1]) for n in toks}
    for n in toks:
        assert tito("--root", roots[n], "login", "--server", url, "--token", toks[n]).returncode == 0
        assert tito("--root", roots[n], "sync").returncode == 0
    login = lambda n, *extra: tito("--root", roots[n], "login", "--server", url, "--token", toks[n], *extra)
    p = login("lin", "--display-name", "Lin.L", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["profile"] == {"display_name": "Lin.L", "on_leaderboard": True}, p.stderr
    assert "Lin.L" in board(url, toks["max"])
    p = login("max", "--display-name", "Lin.L")
    assert p.returncode == 1 and "taken" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    p = login("lin", "--no-leaderboard")
    assert p.returncode == 0 and "Not on the leaderboard." in p.stdout, p.stdout + p.stderr
    assert "Lin.L" not in board(url, toks["max"]) and "Lin.L" in board(url, toks["lin"])
