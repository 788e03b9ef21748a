"""The client side of the second hardening round (issue 28, items 4, 16 and 17): files are never written through a
planted link, output folders that lead out of the course are refused, a read-only reports folder is a one-line error,
and a progress file from a newer minor version keeps its version.
"""
import json, os, stat, sys

import pytest

from conftest import run_tito

pytestmark = pytest.mark.slow


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    assert run_tito("init", root).returncode == 0
    nb = root / "modules" / "01_tensor" / "01_tensor.py"; nb.parent.mkdir(parents=True)
    nb.write_text("# %% [markdown]\n# # Tensor\n\n# %%\n#| export\ndef add(a, b):\n    return a + b\n\n# %%\ndef test_add():\n    assert add(1, 2) == 3\n")
    return root


def test_a_link_planted_at_a_report_cards_old_temp_name_is_not_written_through(course, tmp_path):
    victim = tmp_path / "victim.txt"; victim.write_text("keep me")
    reports = course / "instructor" / "reports"; reports.mkdir(parents=True)
    for pid in range(os.getpid(), os.getpid() + 200):  # the names the old writer used: predictable from the pid
        (reports / f".01_tensor_report_card_x.json.{pid}.tmp").symlink_to(victim)
    r = run_tito("--root", course, "report", "--all")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "keep me"
    assert list(reports.glob("01_tensor_report_card_*.json"))


def test_a_reports_folder_that_links_out_of_the_course_is_refused(course, tmp_path):
    outside = tmp_path / "outside"; outside.mkdir()
    (course / "instructor").mkdir()
    (course / "instructor" / "reports").symlink_to(outside)
    r = run_tito("--root", course, "report", "--all")
    assert r.returncode == 1 and "outside the workspace" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list(outside.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_reports_folder_is_a_one_line_error(course):
    reports = course / "instructor" / "reports"; reports.mkdir(parents=True)
    reports.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        r = run_tito("--root", course, "report", "--all")
        assert r.returncode == 1 and "cannot" in r.stderr and "internal error" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    finally: reports.chmod(0o755)


def test_a_read_only_file_system_error_is_one_line_too(course, monkeypatch):
    "Root ignores a folder's mode; a write that the OS refuses (as on a read-only file system) is still one line."
    code = ("import errno, os, sys, tempfile\n"
            "def refuse(*a, **k): raise OSError(errno.EROFS, 'Read-only file system')\n"
            "tempfile.mkstemp = refuse\n"
            "from tinytorch_progress.cli.main import main\n"
            f"sys.exit(main(['--root', {str(course)!r}, 'report', '--all']))\n")
    import subprocess
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Read-only file system" in r.stderr and "internal error" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_links_at_the_activity_log_and_the_backups_folder_are_refused(course, tmp_path):
    outside = tmp_path / "outside"; outside.mkdir()
    log = course / ".tito" / "events.jsonl"
    if log.exists(): log.unlink()
    log.symlink_to(outside / "events.jsonl")
    r = run_tito("--root", course, "module", "start", "01")
    assert r.returncode == 0 and "the activity log was not" in r.stderr and "it is a link" in r.stderr, r.stderr
    assert not (outside / "events.jsonl").exists()
    backups = course / ".tito" / "backups"
    import shutil; shutil.rmtree(backups)
    backups.symlink_to(outside)
    r = run_tito("--root", course, "module", "start", "02")
    assert r.returncode == 1 and "is a link: refusing to write backups through it" in r.stderr, r.stderr
    assert list(outside.iterdir()) == []


def test_a_newer_minor_version_is_kept_as_read(course):
    p = course / ".tito" / "progress.json"
    p.write_text(json.dumps({"version": "1.7", "completed_modules": [], "completion_dates": {}, "from_1_7": True}))
    assert run_tito("--root", course, "module", "complete", "01", "--skip-tests").returncode == 0
    saved = json.loads(p.read_text())
    assert (saved["version"], saved["completed_modules"], saved["from_1_7"]) == ("1.7", [1], True)
