"""The combined export (`export.build_export`, `tito export`) against the spec's example, in process."""
import json
from datetime import datetime

from conftest import SPEC, tito_main
from spec_workspace import SPEC_DEVIATIONS, leaves, write_spec_workspace
from tinytorch_progress import tracker
from tinytorch_progress.doctor import init_workspace
from tinytorch_progress.export import build_export
from tinytorch_progress.schemas import CombinedExport


def test_spec_workspace_exports_the_spec_example(tmp_path):
    example = write_spec_workspace(tmp_path, SPEC)
    got = build_export(tmp_path, example["user_id"], datetime.fromisoformat(example["timestamp"])).to_json()
    want, have = dict(leaves(example)), dict(leaves(got))
    assert set(have) == set(want), "keys and nesting differ from the spec's combined example"
    diff = {p: (want[p], have[p]) for p in want if want[p] != have[p]}
    assert diff == SPEC_DEVIATIONS  # every other field is equal to the spec's value
    assert CombinedExport.model_validate(got).consistency_errors() == []


def test_cli_export_stdout_and_file(tmp_path):
    example = write_spec_workspace(tmp_path, SPEC)
    p = tito_main("--root", tmp_path, "export", "--user-id", "student_identifier")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    CombinedExport.model_validate(out)
    assert set(dict(leaves(out))) == set(dict(leaves(example)))
    assert out["module_progress"] == example["module_progress"]
    dest = tmp_path / "export.json"
    p = tito_main("--root", tmp_path, "export", "--user-id", "student_identifier", "-o", dest)
    assert p.returncode == 0 and "Wrote the export of student_identifier (7/20 modules, 2/6 milestones completed)" in p.stdout
    written = json.loads(dest.read_text())
    assert {k: v for k, v in written.items() if k not in ("timestamp", "statistics")} == \
           {k: v for k, v in out.items() if k not in ("timestamp", "statistics")}
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]  # atomic: no temp file left
    p = tito_main("--root", tmp_path, "export")
    assert p.returncode == 1 and p.stderr.startswith("tito: error: no user id")


def test_mixed_time_zones_in_files_do_not_break_export(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / ".tito" / "progress.json").write_text(json.dumps(
        {"version": "1.0", "completed_modules": [1, 2], "completion_dates": {"1": "2025-11-16T10:00:00Z", "2": "2025-11-16T12:00:00"}}))
    tracker.complete(tmp_path, 3, skip_tests=True)
    tracker.reset(tmp_path, 3)
    p = tito_main("--root", tmp_path, "export", "--user-id", "ada")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["achievements"]["first_module"] is not None
