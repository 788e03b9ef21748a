"""What a milestone run records (`milestones.run_milestone`, `tito milestone run`), in process on tiny programs that each
run well under a second: parts in order, the run history and its events, a completion no later failure undoes.
Timeouts, crashes, notebooks and the demo's milestones through the entry point: test_milestones.py."""
import json

from conftest import tito_main
from tinytorch_progress import tracker
from tinytorch_progress.doctor import init_workspace
from tinytorch_progress.events import read_events
from tinytorch_progress.milestones import run_milestone
from tinytorch_progress.store import Workspace


def workspace(tmp_path):
    "Milestone 01 unlocked (module 01 completed)."
    init_workspace(tmp_path)
    tracker.complete(tmp_path, 1, skip_tests=True)
    return tmp_path


def program(root, rel, text):
    p = root / "milestones" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_a_later_failing_run_never_undoes_a_completion(tmp_path):
    root = workspace(tmp_path)
    p = program(root, "01_perceptron/01_perceptron.py", "print('learned AND')\n")
    said = []
    r = run_milestone(root, "1", stream=said.append)
    assert (r.ok, r.completed, r.newly_completed, r.pending) == (True, True, True, [])
    assert said[0] == "▶ Milestone 01 (1957: Perceptron), main: milestones/01_perceptron/01_perceptron.py"
    assert said[1] == "learned AND" and said[2].startswith("✓ main passed in")
    when = r.completed_at
    p.write_text("raise RuntimeError('broken again')\n")
    r = run_milestone(root, "01")
    assert (r.ok, r.completed, r.newly_completed, r.completed_at) == (False, True, False, when)
    assert r.runs[0].message == "RuntimeError: broken again"
    s = Workspace(root).read()
    assert [(x["part"], x["passed"]) for x in s.part_results["01"]] == [("main", True), ("main", False)]
    events = [e["event"] for e in read_events(Workspace(root))]
    assert events.count("milestone_run") == 2 and events.count("milestone_complete") == 1


def test_numbered_programs_run_in_name_order_and_import_what_is_beside_them(tmp_path):
    root = workspace(tmp_path)
    program(root, "shared.py", "WEIGHTS = [0.5, -0.5]\n")
    program(root, "01_perceptron/02_train.py", "from shared import WEIGHTS\nprint('train', WEIGHTS)\n")
    program(root, "01_perceptron/01_forward.py", "import shared\nprint('forward', len(shared.WEIGHTS))\n")
    r = run_milestone(root, "01")
    assert [(x.part, x.passed, x.message) for x in r.runs] == [("01_forward", True, "forward 2"), ("02_train", True, "train [0.5, -0.5]")]
    assert r.completed and r.required == ["01_forward", "02_train"]


def test_tito_milestone_run_json_streams_to_stderr(tmp_path):
    root = workspace(tmp_path)
    program(root, "01_perceptron/01_perceptron.py", "print('epoch 1')\n")
    p = tito_main("--root", root, "milestone", "run", "01", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)  # stdout holds the JSON only; the program's output went to stderr
    assert (data["ok"], data["completed"], data["newly_completed"], data["pending_parts"]) == (True, True, True, [])
    assert [x["part"] for x in data["parts"]] == ["main"] and "epoch 1" in p.stderr.splitlines()
    p = tito_main("--root", root, "milestone", "run", "01", "--timeout", "0")
    assert p.returncode == 2 and "--timeout" in p.stderr
    p = tito_main("--root", root, "milestone", "run", "02")
    assert p.returncode == 1 and "is locked: complete module 02 (Activations) first" in p.stderr
