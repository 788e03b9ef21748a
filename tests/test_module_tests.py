"Completion is earned: a module's tests run first (its notebook, or tests/NN*/ with pytest), and a failure records nothing."
import json
import nbformat, pytest
from conftest import run_tito
from tinytorch_progress.doctor import init_workspace
from tinytorch_progress import module_tests as checks

pytestmark = pytest.mark.slow


def notebook(path, *cells):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)


def completed(root):
    return json.loads((root / ".tito" / "progress.json").read_text())["completed_modules"]


def test_failing_notebook_test_is_named_and_nothing_recorded(tmp_path):
    init_workspace(tmp_path)
    notebook(tmp_path / "modules/01_tensor/01_tensor.ipynb", "def add(a, b):\n    return a - b  # bug",
             "def test_unit_add():\n    assert add(2, 2) == 4, 'add(2, 2) should be 4'", "def test_unit_ok():\n    pass")
    r = run_tito("--root", tmp_path, "module", "complete", "01")
    assert r.returncode == 1
    assert "not completed: tests failed (ran modules/01_tensor/01_tensor.ipynb)" in r.stdout
    assert "  FAILED test_unit_add (cell 2, line 2): AssertionError: add(2, 2) should be 4" in r.stdout
    assert r.stdout.count("test_unit_add") == 1  # each failing test once
    assert "FAILED test_unit_add (cell 2, line 2)" in r.stdout and completed(tmp_path) == []


def test_terminal_test_command_reports_each_test_and_records_nothing(tmp_path):
    "`tito test NN` and `tito module test NN` run the saved notebook in a child process: per test, cell, line, hint."
    init_workspace(tmp_path)
    nb = tmp_path / "modules/01_tensor/01_tensor.ipynb"; nb.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Tensor"), nbformat.v4.new_markdown_cell("**Hint:** adding is `a + b`"),
        nbformat.v4.new_code_cell("def add(a, b):\n    return a - b  # bug"),
        nbformat.v4.new_code_cell("def test_unit_add():\n    x = add(2, 2)\n    assert x == 4, f'add(2, 2) gave {x}'"),
        nbformat.v4.new_code_cell("def test_unit_ok():\n    pass")]), nb)
    for argv in (["test", "01"], ["module", "test", "01"]):
        r = run_tito("--root", tmp_path, *argv)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "✗ test_unit_add  cell 4, line 3: AssertionError: add(2, 2) gave 0" in r.stdout, r.stdout
        assert "hint: adding is `a + b`" in r.stdout and "✓ test_unit_ok  (cell 5)" in r.stdout
        assert "Nothing was recorded" in r.stdout and "%tito" not in r.stdout
    data = json.loads(run_tito("--root", tmp_path, "test", "01", "--json").stdout)
    assert [(t["name"], t["passed"], t["cell"]) for t in data["tests"]] == [("test_unit_add", False, 4), ("test_unit_ok", True, 5)]
    assert completed(tmp_path) == []
    events = [json.loads(l)["event"] for l in (tmp_path / ".tito/events.jsonl").read_text().splitlines()]
    assert events.count("test") == 3


def test_error_in_a_cell_names_the_cell(tmp_path):
    init_workspace(tmp_path)
    notebook(tmp_path / "modules/02_activations/02_activations.ipynb", "x = 1", "import not_a_module_anywhere")
    r = run_tito("--root", tmp_path, "module", "complete", "02")
    assert r.returncode == 1 and "FAILED cell 2: ModuleNotFoundError" in r.stdout and completed(tmp_path) == []


def test_jupytext_module_and_magics_in_it(tmp_path):
    init_workspace(tmp_path)
    d = tmp_path / "src/03_layers"; d.mkdir(parents=True)
    (d / "03_layers.py").write_text("# %%\n%load_ext tinytorch_progress\n%tito status\n\n# %%\ndef test_unit_layers():\n    assert 1 + 1 == 2\n")
    r = run_tito("--root", tmp_path, "module", "complete", "03")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tests passed (notebook: 1 test)" in r.stdout and completed(tmp_path) == [3]


def test_pytest_folder_is_used_when_present(tmp_path):
    init_workspace(tmp_path)
    t = tmp_path / "tests/04_losses"; t.mkdir(parents=True)
    (t / "test_losses.py").write_text("def test_mse():\n    assert (2 - 1) ** 2 == 1\n")
    r = run_tito("--root", tmp_path, "module", "complete", "04")
    assert r.returncode == 0 and "tests passed (pytest: 1 test)" in r.stdout and completed(tmp_path) == [4]
    (t / "test_more.py").write_text("def test_broken():\n    assert 0 == 1\n")
    r = run_tito("--root", tmp_path, "module", "reset", "04")
    r = run_tito("--root", tmp_path, "module", "complete", "04")
    assert r.returncode == 1 and "tests/04_losses/test_more.py::test_broken" in r.stdout and completed(tmp_path) == []


def test_pytest_timeout_stops_what_the_tests_started(tmp_path):
    import time
    from tinytorch_progress import tracker
    from tinytorch_progress.curriculum import load_curriculum
    init_workspace(tmp_path)
    t = tmp_path / "tests/05_autograd"; t.mkdir(parents=True)
    pidfile = tmp_path / "child.pid"
    (t / "test_hang.py").write_text(
        "import subprocess, sys, time\n"
        "def test_hangs():\n"
        f"    p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"    open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "    time.sleep(120)\n")
    out = checks.run_module_tests(tmp_path, load_curriculum(tmp_path).module(5), timeout=10)  # pytest must start first, on a busy machine too
    assert not out.passed and "timed out after 10 s" in out.failed[0][1]
    pid = int(pidfile.read_text())
    def alive(pid):  # a killed process may linger as a zombie until something reaps it: that counts as stopped
        try: return " Z " not in open(f"/proc/{pid}/stat").read().split(")", 1)[1][:4]
        except FileNotFoundError: return False
    for _ in range(50):
        if not alive(pid): break
        time.sleep(0.1)
    else: raise AssertionError("the process the tests started is still running")


# ---------------------------------------------------------------- one reader, one way to start a child process


def module_tests(root, number, timeout=120):
    from tinytorch_progress import tracker
    from tinytorch_progress.curriculum import load_curriculum
    return checks.run_module_tests(root, load_curriculum(root).module(number), timeout=timeout)


def test_unreadable_notebook_is_a_one_line_failure_naming_the_file(tmp_path):
    init_workspace(tmp_path)
    nb = tmp_path / "modules/01_tensor/01_tensor.ipynb"; nb.parent.mkdir(parents=True); nb.write_text("{")
    out = module_tests(tmp_path, 1)
    assert not out.passed and out.failed[0][0] == "01_tensor.ipynb"
    assert out.failed[0][1].startswith(f"{nb.relative_to(tmp_path).as_posix()}: line 1 column 2: invalid JSON"), out.failed


def test_nbformat_3_notebook_is_upgraded_and_its_tests_run(tmp_path):
    init_workspace(tmp_path)
    cell = lambda src: {"cell_type": "code", "input": src, "metadata": {}, "outputs": [], "language": "python"}
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {},
          "worksheets": [{"cells": [cell("def add(a, b): return a + b"), cell("def test_unit_add():\n    assert add(1, 2) == 3")]}]}
    nb = tmp_path / "modules/01_tensor/01_tensor.ipynb"; nb.parent.mkdir(parents=True); nb.write_text(json.dumps(v3))
    out = module_tests(tmp_path, 1)
    assert (out.passed, out.how, out.ran) == (True, "notebook", ["test_unit_add"]), out


def test_pytest_runs_through_the_runner_with_the_child_environment(tmp_path):
    init_workspace(tmp_path)
    t = tmp_path / "tests/04_losses"; t.mkdir(parents=True)
    (t / "test_env.py").write_text("import os\ndef test_env():\n    print('from the test')\n"
                                   "    assert (os.environ['TITO_NO_SYNC'], os.environ['MPLBACKEND']) == ('1', 'Agg')\n"
                                   f"    assert os.environ['TITO_ROOT'] == {str(tmp_path.resolve())!r}\n")
    out = module_tests(tmp_path, 4)
    assert (out.passed, out.how, out.failed) == (True, "pytest", []), out.output
    assert "1 passed" in out.output
