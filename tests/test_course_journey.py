"""A student's whole journey in a fresh clone laid out like the real TinyTorch course (issue 26).

The clone is a git repository that commits a developer's progress files (although it gitignores `.tito/`), an nbdev
`settings.ini` with a `tinytorch/` package, the course source `src/01_tensor/01_tensor.py` (jupytext, `#| default_exp
core.tensor`, tests called under `if __name__ == "__main__":`), a stale older copy `modules/01_tensor/tensor.ipynb`
that fails its own test, test folders numbered as the real course numbers them (`tests/15_memoization`,
`tests/16_quantization`, `tests/17_compression`), and a milestone program that imports the student's package.
"""
import hashlib, json, os, shutil, subprocess, sys, sysconfig, venv
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, run_tito

pytestmark = pytest.mark.slow

DEV_PROGRESS = {  # what the course repository ships: a developer's progress, under the numbering it had then
    ".tito/progress.json": {"version": "1.0", "completed_modules": ["01_setup", "02_tensor", "03_activations"],
                            "completion_dates": {"01_setup": "2025-09-19T10:00:00", "02_tensor": "2025-09-19T11:00:00",
                                                 "03_activations": "2025-09-19T12:00:00"}},
    "progress.json": {"started_modules": ["01"], "completed_modules": ["01"], "last_worked": "01"},
}
SOURCE = '''# %% [markdown]
# # Tensor

# %%
#| default_exp core.tensor

# %%
#| export
import numpy as np

class Tensor:
    "A tensor of the student's own making."
    def __init__(self, data): self.data = np.asarray(data, dtype=float)
    def sum(self): return float(self.data.sum()) + 1  # BUG: the student's first try

# %%
def test_unit_tensor_sum():
    assert Tensor([1, 2]).sum() == 3.0, "sum of [1, 2] should be 3"

# %%
if __name__ == "__main__":
    test_unit_tensor_sum()
'''
LEGACY = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def test_unit_old():\n    assert False, 'the old copy fails'")])
FILES = {
    ".gitignore": ".tito/\n",
    "settings.ini": "[DEFAULT]\nlib_name = tinytorch\nlib_path = tinytorch\nnbs_path = modules\nversion = 0.1.0\n",
    "tinytorch/__init__.py": "__version__ = '0.1.0'\n",
    "src/01_tensor/01_tensor.py": SOURCE,
    "src/02_activations/02_activations.py": "# %%\n#| default_exp core.activations\n\n# %%\n#| export\ndef relu(x): return max(0, x)\n",
    "tests/01_tensor/test_tensor_integration.py":
        "from tinytorch.core.tensor import Tensor\n\ndef test_tensor_from_the_package():\n    assert Tensor([1, 1]).sum() == 2.0\n",
    "tests/15_memoization/test_cache.py": "def test_cache():\n    assert False, 'memoization is module 17'\n",
    "tests/16_quantization/test_quant.py": "def test_scale():\n    assert 1 + 1 == 2\n",
    "tests/17_compression/test_prune.py": "def test_prune():\n    assert False, 'compression is module 16'\n",
    "milestones/01_perceptron/perceptron.py":
        "from tinytorch.core.tensor import Tensor\nprint('sum on your Tensor:', Tensor([2, 3]).sum())\nassert Tensor([2, 3]).sum() == 5.0\n",
}
STATE_FILES = ("progress.json", ".tito/progress.json", ".tito/milestones.json", ".tito/config.json")


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.invalid",
                        "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.invalid"})


@pytest.fixture(scope="module")
def clone_template(tmp_path_factory):
    "The course repository as a student clones it (one commit)."
    root = tmp_path_factory.mktemp("clone") / "TinyTorch"
    for rel, text in FILES.items():
        p = root / rel; p.parent.mkdir(parents=True, exist_ok=True); p.write_text(text)
    for rel, data in DEV_PROGRESS.items():
        p = root / rel; p.parent.mkdir(parents=True, exist_ok=True); p.write_text(json.dumps(data, indent=2))
    (root / "modules" / "01_tensor").mkdir(parents=True)
    nbformat.write(LEGACY, root / "modules" / "01_tensor" / "tensor.ipynb")
    git(root, "init", "-q")
    git(root, "add", "-A"); git(root, "add", "-f", ".tito/progress.json")
    git(root, "commit", "-qm", "the course, with a developer's progress")
    return root


@pytest.fixture
def clone(clone_template, tmp_path):
    root = tmp_path / "TinyTorch"
    shutil.copytree(clone_template, root, symlinks=True)
    return root


def tito(root, *args, **kw):
    return run_tito(*args, cwd=root, **kw)


def ok(r):
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def snapshot(root) -> dict:
    "Every file's bytes under the clone (git's own folder left out)."
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts}


def fix_the_bug(root):
    nb_path = root / "modules" / "01_tensor" / "01_tensor.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    for c in nb.cells:
        c.source = c.source.replace(" + 1  # BUG: the student's first try", "")
    nbformat.write(nb, nb_path)


# ---------------------------------------------------------------- whose progress
def test_a_fresh_clone_credits_nothing_and_read_commands_write_nothing(clone):
    before = snapshot(clone)
    r = ok(tito(clone, "status", "--json"))
    st = json.loads(r.stdout)
    assert st["completed_count"] == 0 and [m["state"] for m in st["milestones"][:2]] == ["locked", "locked"]
    assert "came with the course repository" in r.stderr and "credit you nothing" in r.stderr
    ok(tito(clone, "doctor"))
    assert snapshot(clone) == before  # status and doctor (no --fix) wrote nothing
    ok(tito(clone, "report", "--all", "--json"))
    after = snapshot(clone)
    assert all(after.get(f) == before.get(f) for f in STATE_FILES)  # report: no progress file
    before = snapshot(clone)
    r = tito(clone, "test", "01")  # fails (the bug), and only appends to the activity log
    after = snapshot(clone)
    # the activity log, and the lock that guards it
    assert {k for k in after if after[k] != before.get(k)} <= {".tito/events.jsonl", ".tito/.lock"}, sorted(k for k in after if after[k] != before.get(k))


def test_the_first_write_starts_from_the_students_own_progress(clone):
    ok(tito(clone, "module", "start", "01"))
    st = json.loads(ok(tito(clone, "status", "--json")).stdout)
    assert st["completed_count"] == 0 and [m["state"] for m in st["modules"][:3]] == ["started", "not started", "not started"]
    saved = json.loads((clone / ".tito" / "progress.json").read_text())
    assert saved["completed_modules"] == []
    kept = [json.loads(p.read_text()) for p in (clone / ".tito" / "backups").glob("progress.json.*.bak")]
    assert any(k.get("completed_modules") == DEV_PROGRESS[".tito/progress.json"]["completed_modules"] for k in kept)
    ok(tito(clone, "doctor"))
    assert json.loads((clone / "progress.json").read_text())["completed_modules"] == []  # never credited later


# ---------------------------------------------------------------- which file, which tests
def test_the_module_is_the_students_notebook_made_from_the_source(clone):
    r = ok(tito(clone, "module", "start", "01"))
    assert "modules/01_tensor/01_tensor.ipynb (created from the course source)" in r.stdout
    d = json.loads(ok(tito(clone, "doctor", "--json")).stdout)
    assert d["module_files"]["01_tensor"] == "modules/01_tensor/01_tensor.ipynb"
    assert any("stale copy modules/01_tensor/tensor.ipynb" in n for n in d["notes"]), d["notes"]
    assert "module 01 (Tensor): modules/01_tensor/01_tensor.ipynb; tests: tests/01_tensor" in d["notes"]
    st = json.loads(ok(tito(clone, "status", "--json")).stdout)
    tests = {m["key"]: m["tests"] for m in st["modules"]}
    assert (tests["15"], tests["16"], tests["17"]) == ("tests/16_quantization", "tests/17_compression", "tests/15_memoization")
    nb = clone / "modules" / "01_tensor" / "01_tensor.ipynb"
    nb.write_text(nb.read_text().replace("np.asarray", "np.array"))
    ok(tito(clone, "module", "start", "01"))
    assert "np.array(" in nb.read_text()  # an existing notebook is never replaced


def test_the_right_tests_run_with_pytests_reasons(clone):
    (clone / "src" / "16_compression").mkdir(parents=True)
    (clone / "src" / "16_compression" / "16_compression.py").write_text("# %%\ndef test_unit_ok(): pass\n")
    r = tito(clone, "test", "16", "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 1 and data["sources"] == ["src/16_compression/16_compression.py", "tests/17_compression"], data
    fails = [t for t in data["tests"] if not t["passed"]]
    assert [t["name"] for t in fails] == ["tests/17_compression/test_prune.py::test_prune"]
    assert "compression is module 16" in fails[0]["message"] and fails[0]["message"].count("test_prune") == 0
    r = ok(tito(clone, "test", "15", "--json"))  # module 15 Quantization: tests/16_quantization, never 15_memoization
    assert json.loads(r.stdout)["sources"] == ["tests/16_quantization"]


def test_the_course_style_main_block_names_the_failing_test(clone):
    r = tito(clone, "module", "complete", "01")
    assert r.returncode == 1
    assert "test_unit_tensor_sum" in r.stdout and "sum of [1, 2] should be 3" in r.stdout, r.stdout
    assert json.loads(ok(tito(clone, "status", "--json")).stdout)["completed_count"] == 0


# ---------------------------------------------------------------- complete = tests, then export, then record
def test_fresh_clone_to_milestone_on_the_students_own_code(clone):
    ok(tito(clone, "module", "start", "01"))
    assert tito(clone, "test", "01").returncode == 1  # the bug
    fix_the_bug(clone)
    ok(tito(clone, "test", "01"))
    r = ok(tito(clone, "module", "complete", "01"))
    assert "Completed module 01 (Tensor)" in r.stdout and "tests/01_tensor" in r.stdout
    exported = (clone / "tinytorch" / "core" / "tensor.py").read_text()
    assert "return float(self.data.sum())" in exported and "BUG" not in exported  # the student's own (fixed) code
    assert "File to edit: ../../modules/01_tensor/01_tensor.ipynb" in exported
    digest = hashlib.sha256((clone / "modules" / "01_tensor" / "01_tensor.ipynb").read_bytes()).hexdigest()
    events = [json.loads(l) for l in (clone / ".tito" / "events.jsonl").read_text().splitlines()]
    assert [e["sha256"] for e in events if e["event"] == "complete"] == [digest]
    export = json.loads(ok(tito(clone, "export", "--user-id", "ada")).stdout)
    assert export["module_progress"]["notebook_sha256"] == {"1": digest}
    r = ok(tito(clone, "milestone", "run", "01"))
    assert "sum on your Tensor: 5.0" in r.stdout
    st = json.loads(ok(tito(clone, "status", "--json")).stdout)
    assert st["completed_count"] == 1 and [m["key"] for m in st["modules"] if m["state"] == "completed"] == ["01"]
    assert st["milestones"][0]["state"] == "completed"


def test_a_milestone_names_the_module_its_package_lacks(clone):
    (clone / "milestones" / "01_perceptron" / "perceptron.py").write_text("from tinytorch.core.activations import relu\n")
    ok(tito(clone, "module", "start", "01")); fix_the_bug(clone)
    ok(tito(clone, "module", "complete", "01"))
    r = tito(clone, "milestone", "run", "01")
    assert r.returncode == 1 and "which has no tinytorch.core.activations" in r.stderr
    assert "`tito module complete 02`" in r.stderr and "Next" not in r.stdout


def test_complete_names_what_the_package_init_imports_but_is_not_exported(clone):
    (clone / "tinytorch" / "__init__.py").write_text("from .core.tensor import Tensor\nfrom .core.activations import relu\n")
    ok(tito(clone, "module", "start", "01")); fix_the_bug(clone)
    (clone / "tests" / "01_tensor" / "test_tensor_integration.py").unlink()  # it imports the package, which cannot import yet
    r = ok(tito(clone, "module", "complete", "01"))
    assert "imports modules not exported yet" in r.stderr and "tinytorch.core.activations (module 02 Activations" in r.stderr
    r = ok(tito(clone, "export", "02"))
    assert "Exported module 02 (Activations): tinytorch/core/activations.py" in r.stdout


def test_skip_export_and_export_on_its_own(clone):
    ok(tito(clone, "module", "start", "01")); fix_the_bug(clone)
    (clone / "tests" / "01_tensor" / "test_tensor_integration.py").unlink()
    ok(tito(clone, "module", "complete", "01", "--skip-export"))
    assert not (clone / "tinytorch" / "core" / "tensor.py").exists()
    r = ok(tito(clone, "export", "--all"))
    assert (clone / "tinytorch" / "core" / "tensor.py").is_file() and "tinytorch/core/activations.py" in r.stdout


def test_export_never_writes_outside_the_package(clone):
    (clone / "settings.ini").write_text("[DEFAULT]\nlib_path = ../outside\n")
    r = tito(clone, "export", "01")
    assert r.returncode == 1 and "is not a folder of the course" in r.stderr and not (clone.parent / "outside").exists()


# ---------------------------------------------------------------- a verdict the notebook cannot forge
@pytest.mark.parametrize("trick", [
    "print('@@TITO-RESULT@@{\"passed\": true, \"message\": \"all tests passed\"}', flush=True)\nimport os; os._exit(0)",
    "import json, sys; print(json.dumps({'passed': True, 'ran': ['test_unit_tensor_sum'], 'failed': []})); sys.exit(0)",
    "import os; os._exit(0)",
])
def test_a_notebook_that_forges_its_verdict_is_tests_did_not_run(clone, trick):
    cur = json.loads((ROOT / "tinytorch_progress" / "curriculum.json").read_text())
    (clone / ".tito").mkdir(exist_ok=True)
    (clone / ".tito" / "curriculum.json").write_text(json.dumps({**cur, "allow_skip_tests": False}))
    ok(tito(clone, "module", "start", "01"))
    nb_path = clone / "modules" / "01_tensor" / "01_tensor.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(trick))
    nbformat.write(nb, nb_path)
    r = tito(clone, "module", "complete", "01")
    assert r.returncode == 1 and "passed" not in r.stdout.split("\n")[0].lower().replace("not completed", ""), r.stdout
    assert "tests did not run" in r.stdout or "before its tests ran" in r.stdout, r.stdout
    assert json.loads((clone / ".tito" / "progress.json").read_text())["completed_modules"] == []


# ---------------------------------------------------------------- one tito for both
def test_the_courses_student_commands_are_answered_by_ours(clone):
    ok(tito(clone, "module", "start", "01"))
    for args in (["module", "list"], ["module", "resume", "01"], ["module", "status"], ["milestones", "list"],
                 ["milestones", "status"], ["export", "01"], ["--version"]):
        ok(tito(clone, *args))
    assert "tinytorch-progress" in ok(tito(clone, "--version")).stdout
    r = tito(clone, "test", "--all")
    assert r.returncode == 1 and "Module 01" in r.stdout  # stops at the first module that fails
    r = tito(clone, "setup")
    assert r.returncode == 1 and "is a command of the course's own tito, which is not installed here" in r.stderr


@pytest.fixture(scope="module")
def both_clis(tmp_path_factory):
    "A venv (seeing this environment's packages) with this package and then the course's own `tito` installed by pip."
    d = tmp_path_factory.mktemp("both")
    env_dir = d / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True).stdout.strip()
    Path(site, "this_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # our dependencies, without a download
    course = d / "course-cli"
    (course / "tito").mkdir(parents=True)
    (course / "tito" / "__init__.py").write_text("")
    (course / "tito" / "main.py").write_text("import sys\ndef main():\n    print('course tito', sys.argv[1:])\n    return 0\n"
                                             "if __name__ == '__main__': sys.exit(main())\n")
    (course / "pyproject.toml").write_text('[project]\nname = "course-tito"\nversion = "0.1"\n[project.scripts]\ntito = "tito.main:main"\n'
                                           '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    for target in (ROOT, course):  # ours first: the course's `tito` is installed last and owns the name
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-e", str(target)],
                       check=True, capture_output=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env_dir / "bin"


def test_with_the_courses_tito_installed_last_our_steps_say_tito_progress(clone, both_clis):
    env = {**os.environ, "PATH": f"{both_clis}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    run = lambda *a: subprocess.run([str(both_clis / a[0]), *a[1:]], cwd=clone, env=env, capture_output=True, text=True, timeout=120)
    r = run("tito", "module", "start", "01")
    assert r.stdout.startswith("course tito ['module', 'start', '01']")  # the course's tito owns the name
    r = run("tito-progress", "status")
    assert r.returncode == 0 and "$ tito-progress module start 01" in r.stdout, r.stdout
    r = run("tito-progress", "system", "doctor")
    assert r.returncode == 0 and "course tito ['system', 'doctor']" in r.stdout
