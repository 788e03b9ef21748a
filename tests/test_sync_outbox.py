"""The outbox (`outbox.Outbox`, sent by `sync.sync`): queued while offline, delivered in order without duplicates, and
what may not be sent — a snapshot queued for another user id, a damaged file, an older snapshot superseded — set aside
in `.tito/outbox/not-sent/`, never sent to be refused and never lost. In process, through tests/website.py."""
import json

import pytest

from tinytorch_progress import tracker
from tinytorch_progress.outbox import Outbox
from tinytorch_progress.sync import login
from website import OFFLINE, api, site, sync_json, workspace  # noqa: F401 (fixtures)


def test_offline_outbox_then_delivered_in_order_without_duplicates(tmp_path, site):
    site.down = True  # nothing answers there yet
    root = workspace(tmp_path, completed=[1])
    res = sync_json(root, site.transport, site.url, retries=1)
    assert not res["ok"] and res["queued"] == 1 and res["message"].startswith(f"server {site.url} unreachable: cannot connect")
    assert f"; if it moved, `tito login --server NEW_URL` keeps your token. 1 snapshot(s) kept" in res["message"]
    assert sync_json(root, site.transport, site.url, retries=0)["queued"] == 1  # same progress: not queued twice
    tracker.complete(root, 2, skip_tests=True)
    assert sync_json(root, site.transport, site.url, retries=0)["queued"] == 2
    queued = [json.loads(p.read_text())["module_progress"]["completed_count"] for p in Outbox(root).items()]
    assert queued == [1, 2]
    site.down = False  # the server comes up
    login(root, site.url, site.add_user("fay"), "fay")
    res = sync_json(root, site.transport)
    assert res["ok"] and res["sent"] == 2 and res["queued"] == 0, res
    assert "server has 2/20 modules" in res["message"]
    assert site.snapshots("fay") == 2 and site.count("POST", "/api/progress/upload") == 2


# ---------------------------------------------------------------- a snapshot queued for another user id (issue 16)

def demo_left_a_snapshot(tmp_path):
    "A workspace the demo logged in as demo-student to a server that is gone, leaving a queued snapshot."
    root = workspace(tmp_path, completed=[1])
    login(root, "https://demo.example.org", "tt_demo", "demo-student")
    res = sync_json(root, OFFLINE, retries=0)
    assert not res["ok"] and res["queued"] == 1
    tracker.complete(root, 2, skip_tests=True)
    return root


@pytest.mark.parametrize("with_user_id", [True, False])
def test_a_snapshot_queued_for_another_user_is_not_sent(tmp_path, site, with_user_id):
    root = demo_left_a_snapshot(tmp_path)
    # without a user id, the server names the login's user on the first reply
    login(root, site.url, site.add_user("ada"), "ada" if with_user_id else None)
    res = sync_json(root, site.transport)
    assert res["ok"] and res["sent"] == 1 and res["queued"] == 0 and res["rejected"] == [], res
    assert len(res["not_sent"]) == 1 and "queued for user id 'demo-student', but the login is 'ada'" in res["not_sent"][0]
    assert res["message"].startswith(f"synced to {site.url} as ada: server has 2/20 modules")
    assert "1 snapshot(s) not sent, kept in .tito/outbox/not-sent/" in res["message"]
    assert site.count("POST", "/api/progress/upload") == 1 and site.snapshots("ada") == 1  # never sent to be refused
    kept = list((root / ".tito" / "outbox" / "not-sent").glob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["user_id"] == "demo-student"
    assert json.loads((root / ".tito" / "config.json").read_text())["user_id"] == "ada"
    res = sync_json(root, site.transport)  # nothing left to set aside: a plain success
    assert res["ok"] and res["not_sent"] == [] and "not sent" not in res["message"], res


def test_damaged_outbox_items_are_set_aside(tmp_path, api):
    root = workspace(tmp_path, completed=[1])
    login(root, api.url, "tt_x", "ada")
    ob = root / ".tito" / "outbox"; ob.mkdir()
    (ob / "00000000000000000001-a.json").write_bytes(b"\xff\xfe not json")
    (ob / "00000000000000000002-b.json").write_text('{"user_id": "ada", "module_progress": []}')
    res = sync_json(root, api.transport)
    assert res["ok"] and res["sent"] == 1 and len(res["not_sent"]) == 2, res
    assert "not a JSON object" in res["not_sent"][0] and "not a valid upload (module_progress" in res["not_sent"][1]
    assert len(list((ob / "not-sent").glob("*.json"))) == 2 and len(api.received) == 1


def test_an_older_snapshot_of_the_same_user_is_superseded_not_sent_after_a_newer_one(tmp_path, site):
    "Logged in without a user id, the first reply names the login's; an older snapshot naming it stays unsent (kept)."
    root = workspace(tmp_path, completed=[1])
    gone = "https://gone.example.org"
    login(root, gone, "tt_old", "ada")  # a server that is gone
    res = sync_json(root, OFFLINE, retries=0)
    assert not res["ok"] and res["queued"] == 1 and res["message"].startswith(f"server {gone} unreachable: ")
    tracker.complete(root, 2, skip_tests=True)
    login(root, site.url, site.add_user("ada"))
    res = sync_json(root, site.transport)
    assert res["ok"] and res["sent"] == 1 and "server has 2/20 modules" in res["message"], res
    assert res["not_sent"] == [] and len(res["superseded"]) == 1 and "not sent" not in res["message"]
    assert res["message"].endswith("; 1 older queued snapshot superseded by the one sent (nothing was lost)"), res["message"]
    assert site.snapshots("ada") == 1 and len(list((root / ".tito" / "outbox" / "not-sent").glob("*.json"))) == 1
