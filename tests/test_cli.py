"""The `tito` command line. In process (`tito_main`): help on every level, exit codes, one-line errors, --json read
back by the models. Through the real entry point in a subprocess, what only a process shows: the working folder, a
terminal's width and colours, what a command imports."""
import json, os, pty, shutil, subprocess, sys
import pytest
from conftest import TITO, run_tito, spec_json_blocks, tito_main
from pydantic import TypeAdapter
from tinytorch_progress.doctor import init_workspace
from tinytorch_progress.tracker import Status


@pytest.fixture
def ws(tmp_path):
    "A workspace as `tito init` makes it (`init` itself: test_init_gitignores_and_doctor_reports)."
    init_workspace(tmp_path)
    return tmp_path


HELP = [[], ["status"], ["module"], ["module", "start"], ["module", "complete"], ["module", "reset"], ["module", "status"],
        ["milestone"], ["milestone", "progress"], ["milestone", "complete"], ["milestones", "status"], ["init"], ["doctor"],
        ["validate"], ["schema"], ["start"], ["complete"], ["demo"], ["test"], ["module", "test"]]


@pytest.mark.parametrize("cmd", HELP, ids=lambda c: " ".join(c) or "tito")
def test_help_on_every_level(cmd):
    r = tito_main(*cmd, "--help")
    assert r.returncode == 0 and "usage: tito" in r.stdout and not r.stderr


USAGE = [["bogus"], ["module"], ["milestone"], ["status", "--bogus"], ["--root"], ["milestone", "complete"],
         ["validate"], ["module", "reset"], ["module", "start", "01", "02"], ["schema", "--nope"]]


@pytest.mark.parametrize("cmd", USAGE, ids=lambda c: " ".join(c))
def test_usage_errors_exit_2(cmd, ws):
    r = tito_main("--root", ws, *cmd) if cmd != ["--root"] else tito_main(*cmd)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "error:" in r.stderr


FAILS = [(["module", "start", "99"], "not in the curriculum"), (["module", "start", "tensor"], "not a module id"),
         (["module", "complete", "01"], "no tests found"), (["milestone", "complete", "03"], "is locked"),
         (["milestone", "complete", "09"], "not in the curriculum"), (["schema", "nope"], "unknown format")]


@pytest.mark.parametrize("cmd,msg", FAILS, ids=lambda c: " ".join(c) if isinstance(c, list) else "")
def test_operation_failures_exit_1_with_one_line(cmd, msg, ws):
    r = tito_main("--root", ws, *cmd)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("tito: error:") and msg in r.stderr


def test_bad_config_value_is_a_one_line_error(ws):
    r = tito_main("--root", ws, "login", "--server", "http://127.0.0.1:9", "--token", "t", "--user-id", "a\tb")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and ("user_id" in r.stderr or "--user-id" in r.stderr), r.stderr


def test_missing_root_is_one_line(tmp_path):
    r = tito_main("--root", tmp_path / "nope", "status")
    assert r.returncode == 1 and r.stderr.strip() == f"tito: error: workspace {tmp_path / 'nope'} is not a folder"


def test_root_discovery_walks_up(ws):
    (ws / "modules" / "01_tensor").mkdir(parents=True)
    r = run_tito("status", cwd=ws / "modules" / "01_tensor")
    assert r.returncode == 0 and str(ws) in r.stdout
    r = run_tito("status", env={"TITO_ROOT": str(ws)}, cwd="/")
    assert r.returncode == 0 and str(ws) in r.stdout


def test_module_defaults_to_the_current_folder(ws):
    d = ws / "modules" / "04_losses"; d.mkdir(parents=True)
    r = run_tito("module", "start", cwd=d)
    assert r.returncode == 0 and "Started module 04 (Losses)" in r.stdout


def test_json_of_every_read_command_validates(ws):
    tito_main("--root", ws, "module", "complete", "01", "--skip-tests")
    for cmd in (["status"], ["status", "--progress"], ["module", "status"], ["milestone", "progress"], ["milestones", "status"]):
        r = tito_main("--root", ws, *cmd, "--json")
        assert r.returncode == 0, r.stderr
        data = TypeAdapter(Status).validate_python(json.loads(r.stdout))  # the status's own type reads its JSON back
        assert data.completed_count == 1 and data.milestones[0].state == "unlocked"
    r = tito_main("validate", ws / ".tito" / "progress.json", "--json")
    assert json.loads(r.stdout) == [{"path": str(ws / ".tito" / "progress.json"), "format": "progress", "ok": True, "error": None, "errors": []}]
    r = tito_main("schema", "--list", "--json")
    assert "export" in json.loads(r.stdout)


def test_status_progress_fits_80_columns_and_lists_every_module(ws):
    run_tito("--root", ws, "module", "start", "17")
    r = run_tito("--root", ws, "status", "--progress")
    lines = r.stdout.splitlines()
    assert all(len(l) <= 80 for l in lines[1:]), max(lines[1:], key=len)
    for n in range(1, 21): assert any(l.startswith(f"{n:02d}  ") for l in lines)
    assert "17  Memoization (KV cache)   Optimization  … started" in r.stdout
    r = run_tito("--root", ws, "milestone", "progress")
    assert "06  2018: MLPerf Benchmarking  01–17     · locked   modules 01–17" in r.stdout


def test_colour_only_on_a_tty_and_never_with_no_color(ws):
    run_tito("--root", ws, "module", "complete", "01", "--skip-tests")

    def on_tty(env):
        master, slave = pty.openpty()
        p = subprocess.Popen(TITO + ["--root", str(ws), "status", "--progress"], stdout=slave, stderr=slave, env=env)
        os.close(slave); out = b""
        while True:
            try: chunk = os.read(master, 65536)
            except OSError: break
            if not chunk: break
            out += chunk
        p.wait(); os.close(master)
        return out.decode()

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert "\x1b[" in on_tty(env)
    assert "\x1b[" not in on_tty({**env, "NO_COLOR": "1"})
    assert "\x1b[" not in subprocess.run(TITO + ["--root", str(ws), "status", "--progress"], env=env, capture_output=True, text=True).stdout


def test_init_gitignores_and_doctor_reports(tmp_path):
    (tmp_path / ".gitignore").write_text("build/")
    r = tito_main("init", tmp_path)
    assert "added .tito/ to .gitignore" in r.stdout
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == ".tito/"
    r = tito_main("--root", tmp_path, "doctor")
    assert r.returncode == 0 and "nothing to repair" in r.stdout
    shutil.rmtree(tmp_path / ".tito" / "backups")
    (tmp_path / ".tito" / "milestones.json").write_text("{broken")
    r = tito_main("--root", tmp_path, "doctor")  # reports, changes nothing
    assert r.returncode == 1 and "`tito doctor --fix` restores the newest valid backup" in r.stdout
    r = tito_main("--root", tmp_path, "doctor", "--fix")  # and no backups to restore
    assert r.returncode == 1 and "no valid backup" in r.stdout
    assert (tmp_path / ".tito" / "milestones.json").read_text() == "{broken"
    (tmp_path / ".tito" / "milestones.json").unlink()
    assert tito_main("--root", tmp_path, "module", "complete", "01", "--skip-tests").returncode == 0
    assert tito_main("--root", tmp_path, "module", "complete", "02", "--skip-tests").returncode == 0
    (tmp_path / ".tito" / "milestones.json").write_text('{"unlocked_milestones": 7}')
    r = tito_main("--root", tmp_path, "doctor", "--fix")
    assert r.returncode == 0 and "repaired:" in r.stdout and "restored the backup" in r.stdout
    assert list((tmp_path / ".tito" / "backups").glob("corrupt-*-milestones.json"))
    assert json.loads((tmp_path / ".tito" / "milestones.json").read_text())["unlocked_milestones"] == ["01", "02"]


def test_upstream_workspace_is_read_as_is(tmp_path):
    (tmp_path / ".tito").mkdir()
    (tmp_path / "progress.json").write_text(json.dumps({"started_modules": ["01", "02"], "completed_modules": ["01"], "last_worked": "02"}))
    (tmp_path / ".tito" / "progress.json").write_text(json.dumps({"version": "1.0", "completed_modules": ["01", 2], "completion_dates": {}}))
    before = {p: p.read_bytes() for p in (tmp_path / "progress.json", tmp_path / ".tito" / "progress.json")}
    r = tito_main("--root", tmp_path, "status", "--json")
    data = json.loads(r.stdout)
    assert [m["state"] for m in data["modules"][:3]] == ["completed", "completed", "not started"]
    assert data["milestones"][1]["state"] == "unlocked"  # requirements met although upstream never recorded it
    assert {p: p.read_bytes() for p in before} == before  # reading never rewrites


def test_the_command_table_names_every_command_module():
    "One table, `commands.COMMANDS`: every `cmd_*` module is in it, and each entry builds exactly its own parser."
    import tinytorch_progress
    from pathlib import Path
    from tinytorch_progress.cli.commands import COMMANDS, build_parser
    modules = {p.stem for p in Path(tinytorch_progress.__file__).parent.glob("cmd_*.py")}
    assert modules <= set(COMMANDS.values()), modules - set(COMMANDS.values())
    for name in (n for n in COMMANDS if " " not in n):
        sub = next(a for a in build_parser(only=name)._actions if a.dest == "command")
        assert list(sub.choices) == [name]
    run = build_parser(only="milestone").parse_args(["milestone", "run", "01", "--part", "2"])
    assert (run.id, run.part, run.run.__module__) == ("01", "2", "tinytorch_progress.cli.milestones")


def test_status_imports_only_its_own_command_module():
    "`tito status` imports one command module and builds one subparser (the table's point)."
    code = ("import sys; from tinytorch_progress.cli.commands import parse; a = parse(['status']); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('tinytorch_progress.cli.', 'tinytorch_progress.cmd_')) and not m.endswith('.commands'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["tinytorch_progress.cli.progress"]


def test_help_lists_the_students_commands_first_one_line_each():
    r = run_tito("help")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines.index("Your commands:") < lines.index("Course staff:")
    mine = lines[lines.index("Your commands:") + 1: lines.index("Course staff:") - 1]
    course_head = "The course's own tito (handed to it):"
    staff = lines[lines.index("Course staff:") + 1: lines.index(course_head) - 1]
    course = lines[lines.index(course_head) + 1:]
    assert {l.split()[1] for l in staff} == {"serve", "server", "demo", "validate", "schema", "report"}
    assert {"status", "test", "complete", "help"} <= {l.split()[1] for l in mine}
    assert {"setup", "system", "nbgrader", "community"} <= {l.split()[1] for l in course}
    assert all(l.startswith("  tito ") for l in mine + staff + course)  # one line each: no wrapped argparse fragments


def test_status_shows_streak_study_time_week_and_achievements(ws):
    assert run_tito("--root", ws, "module", "complete", "01", "--skip-tests").returncode == 0
    out = run_tito("--root", ws, "status").stdout
    assert "Activity    streak 1 day (longest 1)" in out and "1 module this week" in out and "Achieved    first module" in out


def test_course_can_refuse_skip_tests(ws):
    from tinytorch_progress.curriculum import DEFAULT_PATH
    (ws / ".tito" / "curriculum.json").write_text(json.dumps({**json.loads(DEFAULT_PATH.read_text()), "allow_skip_tests": False}))
    r = tito_main("--root", ws, "module", "complete", "01", "--skip-tests")
    assert r.returncode == 1 and r.stderr.startswith("tito: error: this course requires tests") and len(r.stderr.splitlines()) == 1
    assert json.loads((ws / ".tito" / "progress.json").read_text())["completed_modules"] == []


def test_completion_in_a_terminal_says_next_with_terminal_commands(ws):
    nb = ws / "modules" / "02_activations" / "02_activations.ipynb"; nb.parent.mkdir(parents=True); nb.write_text("{}")
    out = tito_main("--root", ws, "module", "complete", "01", "--skip-tests").stdout
    assert "re-create it with `tito milestone run 01`" in out and "%tito" not in out
    assert "Next: module 02 (Activations): modules/02_activations/02_activations.ipynb — tito module start 02" in out


def test_perf_cli(tmp_path):
    example = next(b for b in spec_json_blocks() if "timer_accuracy" in b)
    d = tmp_path / "tests" / "performance" / "performance_results"; d.mkdir(parents=True)
    (d / "14_profiling_performance_results.json").write_text(json.dumps(example))
    (d / "15_quantization_performance_results.json").write_text('{"x": "{\'ok\': True}", "y": "__import__(\'os\')"}')
    (tmp_path / ".tito").mkdir()
    r = run_tito("--root", tmp_path, "perf")
    assert r.returncode == 1 and "14_profiling: 3/6 passed" in r.stdout and "ERROR       real_world_scenario  integer modulo by zero" in r.stdout
    assert "UNPARSEABLE y" in r.stdout and "Total: 4/8 tests passed in 2 module(s)" in r.stdout
    r = run_tito("--root", tmp_path, "perf", "15", "--json")
    data = json.loads(r.stdout)
    assert [m["module"] for m in data["modules"]] == ["15_quantization"] and data["totals"]["failed"] == 1
    r = run_tito("--root", tmp_path, "perf", "3")
    assert r.returncode == 1 and r.stderr.startswith("tito: error: no performance results for module 3")
