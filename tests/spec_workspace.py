"""The format spec as test data: its JSON blocks, a workspace made of its three progress files, and the fields where
its combined example contradicts its own files (see nbs/21_export.ipynb for the table of why)."""
import json, re
from pathlib import Path

def spec_blocks(spec_path) -> list:
    "The ```json blocks of the format spec, parsed."
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", Path(spec_path).read_text(), re.S)]


def write_spec_workspace(root, spec_path) -> dict:
    "Make `root` a workspace holding the spec's three progress files; return the spec's combined example."
    blocks = spec_blocks(spec_path)
    pick = lambda key: next(b for b in blocks if key in b)
    root = Path(root); (root / ".tito").mkdir(parents=True, exist_ok=True)
    (root / "progress.json").write_text(json.dumps(pick("started_modules"), indent=2))
    (root / ".tito" / "progress.json").write_text(json.dumps(next(b for b in blocks if "completion_dates" in b and "version" in b and "unlocked_milestones" not in b), indent=2))
    (root / ".tito" / "milestones.json").write_text(json.dumps(pick("unlocked_milestones"), indent=2))
    return pick("module_progress")


SPEC_DEVIATIONS = {  # path in the export → (spec's example value, our value)
    ("milestone_progress", "unlocked_milestones", 0, "completed"): (True, False),
    ("milestone_progress", "unlocked_milestones", 0, "completed_at"): ("2025-11-16T15:00:00", None),
    ("milestone_progress", "unlocked_milestones", 2, "completed_at"): ("2025-11-16T17:30:00", "2025-11-16T15:00:00"),
    ("milestone_progress", "unlocked_milestones", 3, "completed"): (False, True),
    ("milestone_progress", "unlocked_milestones", 3, "completed_at"): (None, "2025-11-16T17:30:00"),
    ("statistics", "total_study_time_hours"): (12.5, 0.5),
    ("statistics", "modules_per_day"): (1.2, 0.88),
    ("statistics", "current_streak_days"): (5, 0),
    ("statistics", "longest_streak_days"): (7, 2),
    ("achievements", "halfway_point"): ("2025-11-20T14:00:00", None),
}


def leaves(x, path=()):
    "Every (path, value) leaf of a JSON value; empty containers are leaves."
    if isinstance(x, dict) and x:
        for k, v in x.items(): yield from leaves(v, path + (k,))
    elif isinstance(x, list) and x:
        for i, v in enumerate(x): yield from leaves(v, path + (i,))
    else: yield path, x
