"""The demo course's pieces in process (`demo.write_modules`, `demo.write_demo_milestones`): every module notebook
passes its own tests, and milestone 01 runs on module 01's code. `tito demo` end to end: test_demo.py."""
import nbformat

from tinytorch_progress import tracker
from tinytorch_progress.curriculum import load_curriculum
from tinytorch_progress.demo import write_demo_milestones, write_modules
from tinytorch_progress.doctor import init_workspace
from tinytorch_progress.milestones import run_milestone


def test_every_demo_module_notebook_passes_its_own_tests(tmp_path):
    paths = write_modules(tmp_path)
    assert [p.parent.name for p in paths] == [m.name for m in load_curriculum(tmp_path).modules]
    for p in paths:
        cells = [c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code"]
        assert cells[0].startswith("#| default_exp ") and cells[-1] == "%load_ext tinytorch_progress\n%tito status"
        ns = {}
        for src in cells[1:-1]: exec(compile(src, str(p), "exec"), ns)  # the last of them calls the test
        tests = [name for name in ns if name.startswith("test_unit_")]
        assert len(tests) == 1 and "### BEGIN SOLUTION" not in "".join(cells), p.name


def test_milestone_01_runs_on_the_code_of_module_01(tmp_path):
    init_workspace(tmp_path)
    write_modules(tmp_path)
    written = [p.relative_to(tmp_path).as_posix() for p in write_demo_milestones(tmp_path)]
    assert "milestones/01_perceptron/01_perceptron.ipynb" in written and all((tmp_path / w).is_file() for w in written)
    tracker.complete(tmp_path, 1, skip_tests=True)
    said = []
    r = run_milestone(tmp_path, "01", stream=said.append)
    assert r.ok and r.completed, said
