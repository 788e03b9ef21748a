"Edge cases found in review: each once printed a traceback, crashed, or lost data."
import json
import nbformat
from conftest import ipython_shell, run_tito
from tinytorch_progress import tracker
from tinytorch_progress.store import Workspace
from tinytorch_progress.events import read_events
from tinytorch_progress.doctor import init_workspace


def test_mixed_time_zones_in_files_do_not_break_export(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / ".tito" / "progress.json").write_text(json.dumps(
        {"version": "1.0", "completed_modules": [1, 2], "completion_dates": {"1": "2025-11-16T10:00:00Z", "2": "2025-11-16T12:00:00"}}))
    tracker.complete(tmp_path, 3, skip_tests=True)
    tracker.reset(tmp_path, 3)
    r = run_tito("--root", tmp_path, "export", "--user-id", "ada")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["achievements"]["first_module"] is not None


def test_output_after_the_test_report_is_not_a_crash(tmp_path):
    init_workspace(tmp_path)
    nb = tmp_path / "modules/01_tensor/01_tensor.ipynb"; nb.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import atexit\natexit.register(lambda: print('bye {\"x\": 1}'))\ndef test_unit_a():\n    assert True")]), nb)
    r = run_tito("--root", tmp_path, "module", "complete", "01")
    assert r.returncode == 0 and "Completed module 01" in r.stdout, r.stdout + r.stderr


def test_a_bad_config_does_not_block_status(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / ".tito" / "config.json").write_text('{"logo_theme": 5}')
    r = run_tito("--root", tmp_path, "status")
    assert r.returncode == 0 and "using the standard theme" in r.stderr and "logo_theme" in r.stderr


def test_bad_config_value_is_a_one_line_error(tmp_path):
    init_workspace(tmp_path)
    r = run_tito("--root", tmp_path, "login", "--server", "http://127.0.0.1:9", "--token", "t", "--user-id", "a\tb")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and ("user_id" in r.stderr or "--user-id" in r.stderr), r.stderr


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
    r = run_tito("init", tmp_path)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and ".gitignore" in r.stderr


def test_magic_arguments_are_shell_quoted(tmp_path, monkeypatch):
    init_workspace(tmp_path); monkeypatch.chdir(tmp_path)
    ip = ipython_shell()
    # quotes are removed as a shell removes them (IPython's own splitter would keep them, and `'alice'` is not a valid id)
    ip.run_line_magic("tito", "login --server 'http://127.0.0.1:9' --token t --user-id 'alice'")
    assert json.loads((tmp_path / ".tito" / "config.json").read_text())["user_id"] == "alice"
    ip.run_line_magic("tito", 'export -o "my file.json"')
    assert json.loads((tmp_path / "my file.json").read_text())["user_id"] == "alice"
