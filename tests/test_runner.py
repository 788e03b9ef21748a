"""`runner.run_program` on tiny programs, each a real child process well under a second: what a failure, a crash and a
timeout say, and what was streamed before them. Containment (nothing a run starts outlives it) is
test_runner_containment.py; the runner's own examples are in nbs/15_runner.ipynb."""
import nbformat
import pytest

from conftest import tito_main
from tinytorch_progress.doctor import init_workspace
from tinytorch_progress.errors import TitoError
from tinytorch_progress.runner import run_process, run_program


def run(path, **kw):
    "The run of the program at `path` (in its own workspace), and the lines it streamed."
    lines = []
    return run_program(path, path.parent, stream=lines.append, **kw), lines


def test_a_failing_notebook_names_its_cell_and_streams_the_traceback(tmp_path):
    nb = tmp_path / "xor.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# XOR"), nbformat.v4.new_code_cell("%load_ext tinytorch_progress\nx = 40"),
        nbformat.v4.new_code_cell("print('training…')"), nbformat.v4.new_code_cell("assert x + 2 == 43, 'XOR not solved'")]), nb)
    r, lines = run(nb)
    assert (r.passed, r.message, r.returncode) == (False, "code cell 3: AssertionError: XOR not solved", 1)
    assert r.report["error_cell"] == 4  # its position among all cells, as JupyterLab counts
    assert lines[0] == "training…" and lines[-1] == "AssertionError: XOR not solved"


def test_a_signal_is_a_crash_with_the_last_output(tmp_path):
    p = tmp_path / "die.py"
    p.write_text("import os, signal\nprint('about to die', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    r, lines = run(p)
    assert (r.passed, r.message, r.returncode, lines) == (False, "crashed: killed by SIGKILL (last output: about to die)", -9, ["about to die"])


def test_a_timeout_stops_the_program_and_keeps_what_it_printed(tmp_path):
    p = tmp_path / "slow.py"
    p.write_text("import time\nprint('epoch 1', flush=True)\ntime.sleep(60)\nprint('never')\n")
    r, lines = run(p, timeout=0.5)
    assert (r.passed, r.timed_out, r.message, lines) == (False, True, "timed out after 0.5 s", ["epoch 1"])
    assert r.duration_s < 10
    with pytest.raises(TitoError, match="timeout must be a positive number of seconds, got -1"):
        run_process(["true"], tmp_path, {}, -1, print)


def test_output_after_the_test_report_is_not_a_crash(tmp_path):
    "Found in review: a line printed at exit, after the child's verdict line, once made `tito module complete` crash."
    init_workspace(tmp_path)
    nb = tmp_path / "modules/01_tensor/01_tensor.ipynb"; nb.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import atexit\natexit.register(lambda: print('bye {\"x\": 1}'))\ndef test_unit_a():\n    assert True")]), nb)
    r = tito_main("--root", tmp_path, "module", "complete", "01")
    assert r.returncode == 0 and "Completed module 01" in r.stdout, r.stdout + r.stderr
