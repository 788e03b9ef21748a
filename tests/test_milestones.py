"Runnable milestones (real scripts and notebooks in subprocesses), the demo's milestones, next actions, sequential gating."
import json, os, subprocess, time
from pathlib import Path

import nbformat
import pytest

from conftest import TITO, run_tito, spec_json_blocks
from tinytorch_progress import tracker
from tinytorch_progress.curriculum import DEFAULT_PATH
from tinytorch_progress.demo import write_demo_milestones
from tinytorch_progress.milestones import run_milestone
from tinytorch_progress.store import Workspace
from tinytorch_progress.events import read_events
from tinytorch_progress.doctor import init_workspace
from tinytorch_progress.tracker import status

pytestmark = pytest.mark.slow


def notebook(*cells) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    return nbformat.writes(nb)


def milestones_json(root) -> dict:
    return json.loads(Path(root, ".tito", "milestones.json").read_text())


@pytest.fixture
def ws(tmp_path):
    "A workspace where milestones 01 and 02 are unlocked (modules 01 and 02 completed)."
    init_workspace(tmp_path)
    tracker.complete(tmp_path, 1, skip_tests=True)
    tracker.complete(tmp_path, 2, skip_tests=True)
    return tmp_path


def program(root, rel, text) -> Path:
    p = Path(root, "milestones", rel)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


# ---------------------------------------------------------------- pass / fail, recorded results, completion


def test_failing_part_is_recorded_and_the_milestone_stays_open_until_every_part_passes(ws):
    program(ws, "02_xor/part1.py", "print('part one ran')\n")
    nb = program(ws, "02_xor/part2.ipynb", notebook("x = 40", "print('training…')", "assert x + 2 == 43, 'XOR not solved'"))
    p = run_tito("--root", ws, "milestone", "run", "02")
    assert p.returncode == 1, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == "▶ [1/2] Milestone 02 (1969: XOR Problem), part1: milestones/02_xor/part1.py"
    assert "part one ran" in out and "training…" in out
    assert "AssertionError: XOR not solved" in p.stdout                       # the notebook's traceback is streamed
    assert any(l.startswith("✗ [2/2] part2 FAILED in") for l in out)
    assert "Milestone 02 (1969: XOR Problem) not completed yet: part2 has not passed" in p.stdout
    d = milestones_json(ws)
    assert d["version"] == "1.1" and "02" not in d["completed_milestones"] and "02" not in d["completion_dates"]
    r1, r2 = d["part_results"]["02"]
    assert (r1["part"], r1["passed"], r1["message"]) == ("part1", True, "part one ran")
    assert (r2["part"], r2["passed"], r2["message"]) == ("part2", False, "code cell 3: AssertionError: XOR not solved")
    for r in (r1, r2):
        assert r["duration_s"] > 0
        assert abs(time.time() - time.mktime(time.strptime(r["date"], "%Y-%m-%dT%H:%M:%S"))) < 120
    assert status(ws).next_action.command() == "tito milestone run 01"           # 01 is unlocked and not run

    nb.write_text(notebook("x = 41", "print('training…')", "assert x + 2 == 43, 'XOR not solved'"))
    p = run_tito("--root", ws, "milestone", "run", "02", "--part", "2", "--json")
    assert p.returncode == 0, p.stderr
    assert "training…" in p.stderr                                             # with --json the stream goes to stderr
    data = json.loads(p.stdout)
    assert (data["ok"], data["completed"], data["newly_completed"], data["pending_parts"]) == (True, True, True, [])
    assert [x["part"] for x in data["parts"]] == ["part2"]
    d = milestones_json(ws)
    assert d["completed_milestones"] == ["02"] and d["completion_dates"]["02"] == data["completion_date"]
    assert [(r["part"], r["passed"]) for r in d["part_results"]["02"]] == [("part1", True), ("part2", False), ("part2", True)]
    events = [e["event"] for e in read_events(Workspace(ws))]
    assert events.count("milestone_run") == 3 and events.count("milestone_complete") == 1
    # a later failing run never un-completes it
    nb.write_text(notebook("raise RuntimeError('broken again')"))
    p = run_tito("--root", ws, "milestone", "run", "02", "--json")
    assert p.returncode == 1 and json.loads(p.stdout)["completed"] is True
    assert milestones_json(ws)["completion_dates"]["02"] == data["completion_date"]


def test_single_script_passes_and_completes_with_completion_date(ws):
    program(ws, "01_perceptron/01_perceptron.py", "import os\nprint('root', os.environ['TITO_ROOT'])\nprint('learned AND')\n")
    p = run_tito("--root", ws, "milestone", "run", "1")
    assert p.returncode == 0, p.stderr
    assert f"root {ws.resolve()}" in p.stdout
    assert "Milestone 01 (1957: Perceptron) completed!" in p.stdout
    d = milestones_json(ws)
    assert d["completed_milestones"] == ["01"] and "01" in d["completion_dates"]
    assert d["part_results"]["01"][0]["part"] == "main" and d["part_results"]["01"][0]["message"] == "learned AND"
    st = status(ws)
    assert [r.state for r in st.milestones[:2]] == ["completed", "unlocked"]
    assert st.next_action.command() == "tito milestone run 02"


def test_output_streams_while_the_program_runs(ws):
    program(ws, "01_perceptron/01_perceptron.py", "import time\nprint('epoch 1', flush=True)\ntime.sleep(4)\nprint('epoch 2')\n")
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("TITO_ROOT", None)
    p = subprocess.Popen(TITO + ["--root", str(ws), "milestone", "run", "01"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        lines = [p.stdout.readline(), p.stdout.readline()]
        assert lines[1].strip() == "epoch 1"
        assert p.poll() is None                                                 # still running: the line came live
    finally:
        rest = p.communicate(timeout=60)[0]
    assert "epoch 2" in rest and p.returncode == 0


# ---------------------------------------------------------------- timeout, crash


def test_timeout_kills_the_program_and_what_it_started(ws):
    pidfile = ws / "child.pid"
    program(ws, "01_perceptron/01_perceptron.py",
            "import subprocess, sys, time\n"
            f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
            f"open({str(pidfile)!r}, 'w').write(str(c.pid))\n"
            "print('training forever', flush=True)\ntime.sleep(120)\n")
    t0 = time.monotonic()
    p = run_tito("--root", ws, "milestone", "run", "01", "--timeout", "2")
    assert time.monotonic() - t0 < 30
    assert p.returncode == 1 and "training forever" in p.stdout
    assert "✗ main FAILED in" in p.stdout and "timed out after 2 s" in p.stdout
    r = milestones_json(ws)["part_results"]["01"][-1]
    assert (r["passed"], r["message"]) == (False, "timed out after 2 s") and 2 <= r["duration_s"] < 30
    assert milestones_json(ws)["completed_milestones"] == []
    pid = int(pidfile.read_text())
    for _ in range(50):                                                         # the grandchild died with its group
        try: os.kill(pid, 0)
        except ProcessLookupError: break
        time.sleep(0.1)
    else: pytest.fail(f"process {pid} started by the milestone program survived the timeout")


def test_curriculum_timeout_applies_without_flag(ws):
    cur = json.loads(DEFAULT_PATH.read_text())
    cur["milestones"][0]["timeout_s"] = 1.5
    (ws / ".tito" / "curriculum.json").write_text(json.dumps(cur))
    program(ws, "01_perceptron/01_perceptron.ipynb", notebook("import time", "time.sleep(60)"))
    run = run_milestone(ws, "01")
    assert (run.ok, run.runs[0].message, run.completed) == (False, "timed out after 1.5 s", False)


@pytest.mark.parametrize("code,message", [
    ("import os\nprint('about to crash', flush=True)\nos._exit(3)", "crashed: exit code 3 (last output: about to crash)"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "crashed: killed by SIGSEGV"),
    ("def train():\n    return 1 / 0\ntrain()", "ZeroDivisionError: division by zero"),
    ("import sys\nsys.exit('loss diverged')", "loss diverged"),
    ("import sys\nsys.exit(0)\nraise SystemExit(5)", None),
])
def test_crashes_are_failed_runs_with_their_message(ws, code, message):
    program(ws, "01_perceptron/01_perceptron.py", code)
    run = run_milestone(ws, 1)
    if message is None:
        assert run.ok and run.completed                                         # sys.exit(0) is a normal end
        return
    assert (run.ok, run.completed, run.runs[0].message) == (False, False, message)
    d = milestones_json(ws)
    assert d["part_results"]["01"][-1]["message"] == message and d["completed_milestones"] == []


def test_notebook_errors_name_the_cell_and_skip_tito_magics(ws):
    program(ws, "01_perceptron/01_perceptron.ipynb",
            notebook("%load_ext tinytorch_progress\n%matplotlib inline\nimport matplotlib.pyplot as plt", "plt.plot([1, 2]); plt.show()",
                     "%tito milestone complete 01", "print('fine')", "undefined_name"))
    run = run_milestone(ws, 1)
    assert run.runs[0].message == "code cell 5: NameError: name 'undefined_name' is not defined"
    assert milestones_json(ws)["completed_milestones"] == []                   # the %tito line did not run


# ---------------------------------------------------------------- locked, missing programs, required parts


def test_locked_milestone_is_refused_naming_the_missing_modules(tmp_path):
    init_workspace(tmp_path)
    tracker.complete(tmp_path, 1, skip_tests=True)
    marker = tmp_path / "ran"
    program(tmp_path, "02_xor/02_xor.py", f"open({str(marker)!r}, 'w').write('x')")
    p = run_tito("--root", tmp_path, "milestone", "run", "02")
    assert p.returncode == 1
    assert p.stderr.strip() == ("tito: error: milestone 02 (1969: XOR Problem) is locked: complete module 02 (Activations) first "
                                "(`tito module complete 02`)")
    assert not marker.exists() and milestones_json(tmp_path)["part_results"] == {}
    with pytest.raises(Exception, match=r"complete modules 02 \(Activations\), 03 \(Layers\), 04 \(Losses\), 05 \(Autograd\), 06 \(Optimizers\), 07 \(Training\)"):
        run_milestone(tmp_path, 3)


def test_missing_programs_and_parts_are_clear_errors(ws):
    p = run_tito("--root", ws, "milestone", "run", "01")
    assert p.returncode == 1 and "milestone 01 (1957: Perceptron) has no program: expected a folder milestones/01_<name>/" in p.stderr
    program(ws, "01_perceptron/part1.py", "print(1)")
    p = run_tito("--root", ws, "milestone", "run", "01", "--part", "3")
    assert p.returncode == 1 and p.stderr.strip() == "tito: error: milestone 01 has no part part3 (parts: part1)"
    p = run_tito("--root", ws, "milestone", "run", "01", "--timeout", "0")
    assert p.returncode == 2 and "must be more than 0 seconds" in p.stderr


def test_curriculum_required_parts(ws):
    cur = json.loads(DEFAULT_PATH.read_text())
    cur["milestones"][0]["parts"] = ["part1", "part2"]
    (ws / ".tito" / "curriculum.json").write_text(json.dumps(cur))
    program(ws, "01_perceptron/part1.py", "print('one')")
    program(ws, "01_perceptron/part3_bonus.py", "raise SystemExit('optional part fails')")
    with pytest.raises(Exception, match="required part part2 missing"):
        run_milestone(ws, 1)
    run = run_milestone(ws, 1, part="part1")
    assert (run.ok, run.completed, run.pending) == (True, False, ["part2"])
    program(ws, "01_perceptron/part2.py", "print('two')")
    run = run_milestone(ws, 1)                                                  # part3 is not required: its failure does not block
    assert [(r.part, r.passed) for r in run.runs] == [("part1", True), ("part2", True), ("part3", False)]
    assert (run.ok, run.completed, run.newly_completed) == (False, True, True)


def test_seed_1_0_milestones_file_is_read_and_migrated(tmp_path):
    init_workspace(tmp_path)
    seed = next(b for b in spec_json_blocks() if "unlocked_milestones" in b and "user_id" not in b)
    assert seed["version"] == "1.0"
    (tmp_path / ".tito" / "milestones.json").write_text(json.dumps({**seed, "class_note": "kept"}))
    st = status(tmp_path)                                                       # read as it is
    assert [r.state for r in st.milestones] == ["unlocked", "unlocked", "completed", "completed", "unlocked", "locked"]
    assert st.next_action.command() == "tito milestone run 01"
    program(tmp_path, "02_xor/02_xor.py", "print('solved XOR')")
    run = run_milestone(tmp_path, "02")                                         # unlocked by the file, modules or not
    assert run.completed
    d = milestones_json(tmp_path)
    assert d["version"] == "1.1" and d["class_note"] == "kept"
    assert d["completed_milestones"] == ["02", "03", "04"]
    for k in ("03", "04"): assert d["completion_dates"][k] == seed["completion_dates"][k]
    assert d["unlock_dates"] == seed["unlock_dates"] and d["total_unlocked"] == 5
    assert d["part_results"]["02"][0]["message"] == "solved XOR"
    p = run_tito("validate", tmp_path / ".tito" / "milestones.json")
    assert p.returncode == 0, p.stdout + p.stderr


# ---------------------------------------------------------------- the demo's milestones, next actions


def _next(root) -> dict:
    p = run_tito("--root", root, "status", "--json")
    assert p.returncode == 0, p.stderr
    na = json.loads(p.stdout)["next_action"]
    return {"text": na["text"], "command": " ".join(["tito", *na["args"]]), "kind": na["kind"]}  # as the terminal spells it


def test_demo_milestones_run_on_the_demo_modules_code(tmp_path):
    from tinytorch_progress.demo import build_demo
    root = build_demo(tmp_path / "demo", log=lambda *a: None)          # `tito demo` writes the milestone programs
    assert write_demo_milestones(root) and (root / "milestones" / "02_xor" / "part2_hidden_layer.ipynb").is_file()
    # mid-course: 01, 02 completed, 03 started
    assert _next(root) == {"text": "Finish module 03 (Layers) and record it", "command": "tito module complete 03", "kind": "complete"}
    p = run_tito("--root", root, "milestone", "run", "01")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "AND: " in p.stdout and "accuracy 100%" in p.stdout and "Milestone 01 (1957: Perceptron) completed!" in p.stdout
    p = run_tito("--root", root, "milestone", "run", "02")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "▶ [1/2] Milestone 02 (1969: XOR Problem), part1: milestones/02_xor/part1_perceptron_fails.ipynb" in p.stdout
    assert "no line separates XOR" in p.stdout and "XOR predictions: [0.0, 1.0, 1.0, 0.0]" in p.stdout
    d = milestones_json(root)
    assert d["completed_milestones"] == ["01", "02"] and set(d["completion_dates"]) == {"01", "02"}
    assert [(r["part"], r["passed"]) for r in d["part_results"]["02"]] == [("part1", True), ("part2", True)]
    # they really run the student's code: break matmul in module 01 and milestone 01 fails
    nb_path = root / "modules" / "01_tensor" / "01_tensor.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if "return Tensor(a.data @ b.data)" in c.source)
    cell.source = cell.source.replace("return Tensor(a.data @ b.data)", "return Tensor(a.data @ b.data * 0)")
    nbformat.write(nb, nb_path)
    run = run_milestone(root, 1)
    assert not run.ok and "the perceptron did not learn AND" in run.runs[0].message
    cell.source = cell.source.replace("@ b.data * 0", "@ b.data") + "\nundefined_helper()"
    nbformat.write(nb, nb_path)
    run = run_milestone(root, 1)
    assert "NameError: name 'undefined_helper' is not defined" in run.runs[0].message


def test_next_action_from_new_workspace_to_course_complete(tmp_path):
    init_workspace(tmp_path)
    new = {"text": "Start module 01 (Tensor)", "command": "tito module start 01", "kind": "start"}
    assert _next(tmp_path) == new
    na = status(tmp_path).next_action
    assert (na.text, na.command(), na.kind) == (new["text"], new["command"], new["kind"])
    tracker.start(tmp_path, 1)
    assert _next(tmp_path)["command"] == "tito module complete 01"
    tracker.complete(tmp_path, 1, skip_tests=True)
    assert _next(tmp_path)["command"] == "tito milestone run 01"                # unlocked, not run
    for n in range(1, 21): tracker.complete(tmp_path, n, skip_tests=True)
    na = status(tmp_path).next_action
    assert (na.command(), na.kind, na.text) == ("tito milestone run 01", "milestone", "Run milestone 01 (1957: Perceptron)")
    for i in ("01", "02", "03"):
        program(tmp_path, f"{i}_m/{i}_m.py", "print('ok')")
        assert run_milestone(tmp_path, i).completed
    assert _next(tmp_path)["command"] == "tito milestone run 04"
    for i in ("04", "05", "06"): tracker.complete_milestone(tmp_path, i)
    done = _next(tmp_path)
    assert done["kind"] == "done" and done["command"] == "tito export" and "Course complete" in done["text"]
    assert status(tmp_path).next_action.kind == "done"
    p = run_tito("--root", tmp_path, "status")
    assert "Next        Course complete" in p.stdout


# ---------------------------------------------------------------- sequential gating


def test_sequential_gating_refuses_to_start_a_module_before_the_previous_is_completed(tmp_path):
    init_workspace(tmp_path)
    p = run_tito("--root", tmp_path, "module", "start", "03")
    assert p.returncode == 0                                                    # off by default
    cur = json.loads(DEFAULT_PATH.read_text())
    cur["sequential_gating"] = True
    (tmp_path / ".tito" / "curriculum.json").write_text(json.dumps(cur))
    tracker.complete(tmp_path, 1, skip_tests=True)
    p = run_tito("--root", tmp_path, "module", "start", "04")
    assert p.returncode == 1 and p.stderr.strip() == "tito: error: module 04 is locked: complete module 03 (Layers) first"
    tracker.reset(tmp_path, 3)
    p = run_tito("--root", tmp_path, "start", "03")
    assert p.returncode == 1 and p.stderr.strip() == "tito: error: module 03 is locked: complete module 02 (Activations) first"
    assert 3 not in Workspace(tmp_path).read().started
    assert run_tito("--root", tmp_path, "module", "start", "02").returncode == 0
    assert run_tito("--root", tmp_path, "module", "complete", "02", "--skip-tests").returncode == 0
    assert run_tito("--root", tmp_path, "module", "start", "03").returncode == 0


# ---------------------------------------------------------------- %tito milestone run


def test_magic_in_a_real_kernel_streams_the_run_and_shows_the_summary(ws):
    from nbclient import NotebookClient
    program(ws, "01_perceptron/01_perceptron.ipynb", notebook("print('perceptron learned AND')"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%load_ext tinytorch_progress"),
                                         nbformat.v4.new_code_cell("%tito milestone run 01")])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ws)}}).execute()
    outs = nb.cells[1].outputs
    streamed = "".join(o.get("text", "") for o in outs if o["output_type"] == "stream")
    assert "▶ Milestone 01 (1957: Perceptron), main: milestones/01_perceptron/01_perceptron.ipynb" in streamed
    assert "perceptron learned AND" in streamed and "✓ main passed in" in streamed
    shown = [o for o in outs if o["output_type"] in ("execute_result", "display_data")]
    assert "Milestone 01 (1957: Perceptron) completed!" in shown[0]["data"]["text/plain"] and "text/html" in shown[0]["data"]
    assert milestones_json(ws)["completed_milestones"] == ["01"]


# ---------------------------------------------------------------- the child program and the notebook reader


def test_program_runs_as_main_in_its_folder_with_its_path_as_argv(ws):
    program(ws, "01_perceptron/01_perceptron.py",
            "import os, sys\nhere = os.path.abspath(__file__)\nassert __name__ == '__main__'\n"
            "assert sys.argv == [here], sys.argv\nassert os.getcwd() == os.path.dirname(here)\nprint('ran as a script')\n")
    run = run_milestone(ws, 1)
    assert run.ok and run.runs[0].message == "ran as a script", run.runs[0].message


def test_module_code_loads_from_jupytext_percent_and_light_files(ws):
    from tinytorch_progress.milestones import load_module_code
    d = ws / "modules/01_tensor"; d.mkdir(parents=True)
    (d / "01_tensor.py").write_text('# %% nbgrader={"solution": true}\n#| export\ndef double(x): return 2 * x\n\n'
                                    '# %%\nassert False, "tests are not loaded"\n')
    assert load_module_code(1, root=ws).double(2) == 4
    d = ws / "modules/02_activations"; d.mkdir(parents=True)
    (d / "02_activations.py").write_text("# | export\ndef relu(x): return max(0, x)\n\n\nassert False, 'not exported'\n")
    assert load_module_code(2, root=ws).relu(-1) == 0


# ---------------------------------------------------------------- the real course's layout (issue 13)
def test_numbered_programs_are_parts_in_name_order_with_helpers_importable(ws):
    program(ws, "data_manager.py", "def data():\n    return [1, 2, 3]\n")                    # next to the milestone folders
    program(ws, "02_1969_xor/README.md", "# XOR\n")
    program(ws, "02_1969_xor/xor_utils.py", "raise SystemExit('a helper is not a part')\n")
    program(ws, "02_1969_xor/00_setup.py", "import sys\nprint('interpreter', sys.executable)\n")
    program(ws, "02_1969_xor/01_minsky_fails.py", "from data_manager import data\nprint('points', len(data()))\n")
    program(ws, "02_1969_xor/02_hidden_layer.ipynb", notebook("from data_manager import data", "assert sum(data()) == 6"))
    p = run_tito("--root", ws, "milestone", "run", "02", "--json", cwd=ws / "milestones")
    assert p.returncode == 0, p.stdout + p.stderr
    assert [x["part"] for x in json.loads(p.stdout)["parts"]] == ["00_setup", "01_minsky_fails", "02_hidden_layer"]
    assert f"interpreter {TITO[0]}" in p.stderr and "points 3" in p.stderr   # live output goes to stderr with --json
    assert milestones_json(ws)["completed_milestones"] == ["02"]
    for part, ran in (("1", "01_minsky_fails"), ("02_hidden_layer.ipynb", "02_hidden_layer"), ("00_setup", "00_setup")):
        p = run_tito("--root", ws, "milestone", "run", "02", "--part", part, "--json")
        assert [x["part"] for x in json.loads(p.stdout)["parts"]] == [ran], (part, p.stdout, p.stderr)
    program(ws, "02_1969_xor/01_minsky_plot.py", "print('plot')\n")
    p = run_tito("--root", ws, "milestone", "run", "02", "--part", "01")
    assert p.returncode == 1 and p.stderr.strip() == ("tito: error: milestone 02: part 01 is ambiguous "
                                                      "(01_minsky_fails.py, 01_minsky_plot.py); pass the file name")
