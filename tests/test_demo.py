"`tito demo`, the README's main job, end to end through the entry point."
import pytest
from conftest import run_tito
from tinytorch_progress.schemas import load

pytestmark = pytest.mark.slow


def test_demo_builds_a_working_course_from_a_relative_folder(tmp_path):
    r = run_tito("demo", "course", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "course"
    assert len(list((root / "modules").glob("*/*.ipynb"))) == 20
    tito = load(root / ".tito" / "progress.json", "progress")
    assert tito.completed_modules == [1, 2] and set(tito.completion_dates) == {1, 2}
    ms = load(root / ".tito" / "milestones.json", "milestones")
    assert ms.unlocked_milestones == ["01", "02"]
    assert len(list((root / "instructor" / "reports").glob("*_report_card_*.json"))) == 20
    export = load(root / "exports" / "progress_export.json", "export")
    assert export.module_progress.completed_count == 2 and export.user_id == "demo-student"
    assert (root / "website.db").exists() and "server has 2/20 modules" in r.stdout
    assert "Next        Finish module 03 (Layers) and record it" in r.stdout
    assert "tests passed" in r.stdout and (root / ".gitignore").read_text().count(".tito/") == 1


def test_demo_refuses_a_folder_with_content(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = run_tito("demo", tmp_path)
    assert r.returncode == 1 and r.stderr.strip().endswith("is not empty; choose a new folder for the demo")
    assert (tmp_path / "keep.txt").read_text() == "mine"
