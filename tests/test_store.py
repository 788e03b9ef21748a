"""The store's files in the edge cases review found, each of which once printed a traceback, crashed or lost data: a
config that does not validate, an events line torn by a crash, a `.gitignore` that is not UTF-8. The fault suite
(concurrency, crashes, corrupt files, full disks) is test_store_faults.py."""
from conftest import tito_main
from tinytorch_progress import tracker
from tinytorch_progress.store import Workspace
from tinytorch_progress.events import read_events
from tinytorch_progress.doctor import init_workspace


def test_a_bad_config_does_not_block_status(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / ".tito" / "config.json").write_text('{"logo_theme": 5}')
    r = tito_main("--root", tmp_path, "status")
    assert r.returncode == 0 and "using the standard theme" in r.stderr and "logo_theme" in r.stderr


def test_torn_event_line_keeps_the_next_events(tmp_path):
    init_workspace(tmp_path)
    tracker.start(tmp_path, 1)
    with open(tmp_path / ".tito" / "events.jsonl", "ab") as f: f.write(b'{"ts": "2025-01-01T00:')  # a crash mid-append
    tracker.start(tmp_path, 2)
    ws = Workspace(tmp_path)
    assert [e.get("module") for e in read_events(ws)] == [1, 2]
    assert "skipped 1 unreadable line" in ws.warnings[0]


def test_non_utf8_gitignore_is_a_one_line_error(tmp_path):
    (tmp_path / ".gitignore").write_bytes(b"\xff\xfe build/\n")
    r = tito_main("init", tmp_path)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and ".gitignore" in r.stderr
