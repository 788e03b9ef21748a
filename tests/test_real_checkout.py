"""Every command in a checkout shaped like the real TinyTorch course (issue 13).

A small course tree reproduces each layout the course has used: module notebooks as `NN_name.ipynb`, `name.ipynb`,
`name_dev.ipynb`, jupytext `name.py` / `name_dev.py` / `NN_name.py`, modules that exist only in the authors' `src/` or
the old `modules/source/`, other files beside the notebook (`ABOUT.md`, `README.md`, `*_systems_analysis.py`);
numbered milestone scripts with a shared helper next to the milestone folders and the student's own package at the
root; a progress file written by an older numbering of the course (`01_setup` first); a module notebook that still
holds nbgrader solution regions; a workspace `tests/NN_name/` folder. Every command runs on it.
"""
import json, os, shutil, subprocess, sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, ipython_shell, run_tito

pytestmark = pytest.mark.slow

N_MODULES = 20
SLUGS = ["tensor", "activations", "layers", "losses", "autograd", "optimizers", "training", "dataloader", "spatial",
         "tokenization", "embeddings", "attention", "transformers", "profiling", "quantization", "compression",
         "memoization", "acceleration", "benchmarking", "capstone"]
LEAKED = 12  # 12_attention still holds the instructor's solutions


def notebook_text(slug: str, leaked: bool = False) -> str:
    body = (f"def {slug}_value():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n" if leaked
            else f"def {slug}_value():\n    return 1\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {slug.title()}"),
                                         nbformat.v4.new_code_cell(f"#| export\n{body}"),
                                         nbformat.v4.new_code_cell(f"def test_unit_{slug}():\n    assert {slug}_value() == 1")])
    return nbformat.writes(nb)


def percent_text(slug: str) -> str:
    return (f"# %% [markdown]\n# # {slug.title()}\n\n# %%\n#| export\ndef {slug}_value():\n    return 1\n\n"
            f"# %%\ndef test_unit_{slug}():\n    assert {slug}_value() == 1\n")


# module number -> (relative path of its notebook, kind); every layout TinyTorch has used
LAYOUT = {
    1: "modules/01_tensor/01_tensor.ipynb",
    2: "modules/02_activations/activations.ipynb",
    3: "modules/03_layers/layers_dev.ipynb",
    4: "modules/04_losses/losses.py",
    5: "modules/05_autograd/autograd_dev.py",
    6: "modules/06_optimizers/06_optimizers.py",
    7: "src/07_training/07_training.py",                      # only the authors' source
    8: "src/08_dataloader/08_dataloader.py",                  # modules/08_dataloader/ holds only a README
    9: "modules/source/09_spatial/spatial_dev.py",            # the old layout
}
for n in range(10, N_MODULES + 1):
    s = SLUGS[n - 1]
    LAYOUT[n] = f"modules/{n:02d}_{s}/{n:02d}_{s}.ipynb" if n % 2 == 0 else f"modules/{n:02d}_{s}/{s}.py"

EXTRAS = {  # other files of the course, which are not the module notebook
    "modules/01_tensor/ABOUT.md": "# About\n", "modules/01_tensor/README.md": "# Tensor\n",
    "modules/05_autograd/autograd_systems_analysis.py": "# %%\nraise SystemExit('not the module notebook')\n",
    "modules/05_autograd/README.md": "# Autograd\n", "modules/08_dataloader/README.md": "# DataLoader\n",
    "modules/04_losses/losses_extra_notes.ipynb": notebook_text("notes"),
    "tests/01_tensor/test_tensor_core.py": "def test_tensor_core():\n    assert 2 + 2 == 4\n",
    "tinytorch/__init__.py": "VERSION = 'student'\n",                    # the student's own package
    "milestones/data_manager.py": "def points():\n    return [(0, 0, 0), (1, 1, 1)]\n",
    "milestones/README.md": "# Milestones\n",
    "milestones/01_1957_perceptron/README.md": "# Perceptron\n",
    "milestones/01_1957_perceptron/perceptron_utils.py": "SCALE = 2\n",
    "milestones/01_1957_perceptron/01_rosenblatt_forward.py":
        "import sys, tinytorch\nfrom data_manager import points\nfrom perceptron_utils import SCALE\n"
        "print('forward on', len(points()), 'points with', tinytorch.VERSION, 'tinytorch; scale', SCALE, 'python', sys.executable)\n",
    "milestones/01_1957_perceptron/02_rosenblatt_trained.py":
        "from data_manager import points\nassert len(points()) == 2\nprint('trained')\n",
}
OLD_PROGRESS = {  # written when the course began with 01_setup: named entries mean those modules, wherever they are now
    ".tito/progress.json": {"version": "1.0", "completed_modules": ["01_setup", "02_tensor", "03_activations", "04_layers"],
                            "completion_dates": {"01_setup": "2024-09-01T10:00:00", "02_tensor": "2024-09-02T10:00:00",
                                                 "03_activations": "2024-09-03T10:00:00", "04_layers": "2024-09-04T10:00:00"}},
    "progress.json": {"started_modules": ["01_setup", "02_tensor", "03_activations", "04_layers", "05_losses"],
                      "completed_modules": ["01_setup", "02_tensor", "03_activations", "04_layers"],
                      "last_worked": "05_losses", "last_completed": "04_layers", "last_updated": "2024-09-05T10:00:00"},
}


def build(root: Path):
    for n, rel in LAYOUT.items():
        p = root / rel; p.parent.mkdir(parents=True, exist_ok=True)
        slug = SLUGS[n - 1]
        p.write_text(notebook_text(slug, n == LEAKED) if p.suffix == ".ipynb" else percent_text(slug))
    for rel, text in EXTRAS.items():
        p = root / rel; p.parent.mkdir(parents=True, exist_ok=True); p.write_text(text)
    (root / ".tito").mkdir()
    (root / ".tito" / "config.json").write_text('{"logo_theme": "standard"}\n')
    for rel, d in OLD_PROGRESS.items(): (root / rel).write_text(json.dumps(d, indent=2))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkout") / "TinyTorch"
    build(root)
    return root


@pytest.fixture
def course(template, tmp_path):
    root = tmp_path / "TinyTorch"
    shutil.copytree(template, root)
    return root


def tito(root, *args, **kw):
    return run_tito("--root", root, *args, **kw)


def ok(r):
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def progress(root) -> dict:
    return json.loads((root / ".tito" / "progress.json").read_text())


# ---------------------------------------------------------------- module files: one lookup, shown by doctor and status
def test_every_module_resolves_to_its_notebook(course):
    from tinytorch_progress.curriculum import module_files
    found = {n: f.relative_to(course).as_posix() for n, f in module_files(course).items() if f is not None}
    assert found == LAYOUT


def test_doctor_and_status_json_say_which_file_each_module_resolved_to(course):
    d = json.loads(ok(tito(course, "doctor", "--json")).stdout)
    assert d["module_files"] == {f"{n:02d}_{SLUGS[n - 1]}": rel for n, rel in LAYOUT.items()}
    assert "module notebooks: 20 of 20 found" in d["notes"]
    assert "module 07 (Training): src/07_training/07_training.py" in d["notes"]
    shutil.rmtree(course / "src" / "08_dataloader")
    d = json.loads(ok(tito(course, "doctor", "--json")).stdout)
    assert "module notebooks: 19 of 20 found; none for 08_dataloader" in d["notes"] and d["module_files"]["08_dataloader"] is None
    st = json.loads(ok(tito(course, "status", "--json")).stdout)
    files = {m["key"]: m.get("file") for m in st["modules"]}
    assert files["07"] == "src/07_training/07_training.py" and files["08"] is None and files["02"] == LAYOUT[2]


def test_report_cards_find_every_module(course):
    r = ok(tito(course, "report", "--all", "--json", "--no-save", timeout=300))
    cards = json.loads(r.stdout)
    cards = cards.get("cards", cards) if isinstance(cards, dict) else cards
    names = sorted(c["module_name"] for c in cards)
    assert len(names) == N_MODULES, (names, r.stderr)
    assert names == [f"{n:02d}_{SLUGS[n - 1]}" for n in range(1, N_MODULES + 1)]
    paths = {c["module_name"]: c["module_path"] for c in cards}
    assert paths["07_training"] == "src/07_training" and paths["09_spatial"] == "modules/source/09_spatial"
    r = ok(tito(course, "report", course / "modules" / "08_dataloader", "--no-save"))  # a folder holding only a README
    assert "08_dataloader" in r.stdout


def test_the_magic_knows_its_module_from_the_notebook_it_runs_in(course, monkeypatch):
    monkeypatch.chdir(course)
    ip = ipython_shell()
    ip.user_ns["__vsc_ipynb_file__"] = str(course / LAYOUT[7])      # src/07_training/07_training.py
    try: assert ip.run_line_magic("tito", "start").data()["module"] == "07"
    finally: del ip.user_ns["__vsc_ipynb_file__"]


# ---------------------------------------------------------------- old progress files
def test_old_numbering_is_read_by_name_and_unknown_names_are_kept(course):
    r = ok(tito(course, "status", "--json"))
    st = json.loads(r.stdout)
    done = [m["key"] for m in st["modules"] if m["state"] == "completed"]
    assert done == ["01", "02", "03"], done                       # Tensor, Activations, Layers: not 01–04 by number
    started = [m["key"] for m in st["modules"] if m["state"] == "started"]
    assert started == ["04"]                                        # 05_losses is Losses, module 04 now
    warn = [l for l in r.stderr.splitlines() if "01_setup" in l]
    assert len(warn) == 1 and "not counted" in warn[0], r.stderr   # one warning line, however many files name it
    assert any("01_setup" in w for w in st["warnings"])
    ok(tito(course, "module", "complete", "05", "--skip-tests"))   # a write keeps the unknown entry, as written
    p = progress(course)
    assert p["completed_modules"] == [1, 2, 3, 5, "01_setup"] and p["completion_dates"]["01_setup"] == "2024-09-01T10:00:00"
    assert p["completion_dates"]["1"] == "2024-09-02T10:00:00"       # Tensor's date came with it
    assert "01_setup" in json.loads((course / "progress.json").read_text())["completed_modules"]


def test_doctor_fix_rewrites_named_entries_with_a_backup(course):
    r = ok(tito(course, "doctor"))
    assert "reads by name .tito/progress.json: '02_tensor' → 01" in r.stdout and "tito doctor --fix" in r.stdout
    assert progress(course)["completed_modules"][0] == "01_setup"   # without --fix: untouched
    r = ok(tito(course, "doctor", "--fix"))
    assert "rewrote .tito/progress.json: '02_tensor' → 01, '03_activations' → 02, '04_layers' → 03" in r.stdout, r.stdout
    assert progress(course)["completed_modules"] == [1, 2, 3, "01_setup"]
    root_file = json.loads((course / "progress.json").read_text())
    assert root_file["last_worked"] == "04" and root_file["started_modules"][:4] == ["01", "02", "03", "04"]
    backups = sorted((course / ".tito" / "backups").glob("progress.json.*.bak"))
    assert any(json.loads(b.read_text())["completed_modules"][0] == "01_setup" and "02_tensor" in b.read_text() for b in backups)
    assert "reads by name" not in ok(tito(course, "doctor")).stdout


def test_bare_numbers_keep_meaning_the_number(course):
    (course / ".tito" / "progress.json").write_text(json.dumps({"version": "1.0", "completed_modules": ["01", 2, "module_03"]}))
    (course / "progress.json").unlink()
    st = json.loads(ok(tito(course, "status", "--json")).stdout)
    assert [m["key"] for m in st["modules"] if m["state"] == "completed"] == ["01", "02", "03"]


# ---------------------------------------------------------------- module tests, complete, leaked solutions
def test_complete_runs_the_notebook_and_the_workspace_tests_and_says_which(course):
    r = ok(tito(course, "module", "complete", "01", "--timeout", "120", timeout=300))
    assert "ran modules/01_tensor/01_tensor.ipynb and tests/01_tensor" in r.stdout, r.stdout
    assert "tests passed (notebook+pytest: 2 tests)" in r.stdout
    for n in (4, 7, 9):                                              # jupytext in modules/, src/ only, modules/source/
        r = ok(tito(course, "complete", f"{n:02d}", timeout=300))
        assert f"ran {LAYOUT[n]})" in r.stdout and "tests passed (notebook: 1 test)" in r.stdout, r.stdout
    (course / "tests" / "01_tensor" / "test_tensor_core.py").write_text("def test_tensor_core():\n    assert 2 + 2 == 5\n")
    ok(tito(course, "module", "reset", "01"))
    r = tito(course, "module", "complete", "01", timeout=300)
    assert r.returncode == 1 and "tests/01_tensor/test_tensor_core.py::test_tensor_core" in r.stdout


def test_complete_timeout_is_passed_to_the_test_runs(course):
    p = course / LAYOUT[4]
    p.write_text(p.read_text() + "\n# %%\nimport time\ntime.sleep(60)\n")
    r = tito(course, "module", "complete", "04", "--timeout", "3", timeout=120)
    assert r.returncode == 1 and "timed out after 3 s" in r.stdout, r.stdout + r.stderr
    r = tito(course, "module", "complete", "04", "--timeout", "-1")
    assert r.returncode == 2 and "must be more than 0 seconds" in r.stderr


def test_leaked_solutions_warn_in_doctor_start_and_the_magic(course, monkeypatch):
    leak = f"{LAYOUT[LEAKED]} still holds 1 nbgrader solution region"
    assert leak in ok(tito(course, "doctor")).stdout
    r = ok(tito(course, "module", "start", "12"))
    assert leak in r.stderr and r.stderr.startswith("tito: warning:")
    r = ok(tito(course, "module", "complete", "12", timeout=300))     # completes, warning
    assert leak in r.stderr and "Completed module 12" in r.stdout
    monkeypatch.chdir(course / "modules" / "12_attention")
    import io, contextlib
    err = io.StringIO()
    with contextlib.redirect_stderr(err): ipython_shell().run_line_magic("tito", "start")
    assert leak in err.getvalue()


def test_refuse_leaked_solutions_makes_complete_refuse(course):
    cur = json.loads((ROOT / "tinytorch_progress" / "curriculum.json").read_text())
    (course / ".tito" / "curriculum.json").write_text(json.dumps({**cur, "refuse_leaked_solutions": True}))
    r = tito(course, "module", "complete", "12", "--skip-tests")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "refuses to complete it" in r.stderr, r.stderr
    assert 12 not in progress(course)["completed_modules"]
    ok(tito(course, "module", "complete", "02", "--skip-tests"))     # a student's copy is not refused


# ---------------------------------------------------------------- milestone programs
def test_numbered_milestone_scripts_run_as_parts_with_their_helpers(course):
    r = tito(course, "milestone", "run", "01", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "▶ [1/2] Milestone 01 (1957: Perceptron), 01_rosenblatt_forward: milestones/01_1957_perceptron/01_rosenblatt_forward.py" in r.stdout
    assert f"forward on 2 points with student tinytorch; scale 2 python {sys.executable}" in r.stdout
    assert "README" not in r.stdout.split("▶", 1)[1].split("\n")[0] and "perceptron_utils" not in r.stdout
    ms = json.loads((course / ".tito" / "milestones.json").read_text())
    assert [(x["part"], x["passed"]) for x in ms["part_results"]["01"]] == [("01_rosenblatt_forward", True), ("02_rosenblatt_trained", True)]
    assert ms["completed_milestones"] == ["01"]
    for part in ("2", "02_rosenblatt_trained.py", "02_rosenblatt_trained"):
        r = ok(tito(course, "milestone", "run", "01", "--part", part, "--json", timeout=300))
        assert [p["part"] for p in json.loads(r.stdout)["parts"]] == ["02_rosenblatt_trained"]


# ---------------------------------------------------------------- every other command, and the other entry points
def test_every_other_command_works_in_the_checkout(course, tmp_path):
    for args in (["status"], ["status", "--progress"], ["module", "status"], ["milestone", "progress"], ["milestones", "status"],
                 ["help"], ["validate", course / ".tito" / "progress.json"], ["validate", course / "progress.json"],
                 ["export", "--user-id", "student1", "-o", tmp_path / "export.json"], ["plot", "-o", tmp_path / "progress.png"],
                 ["report", "--all"], ["plot", "report", "-o", tmp_path / "report.svg"], ["perf"], ["init"], ["module", "reset", "02"], ["milestone", "complete", "01"]):
        r = tito(course, *args, timeout=300)
        assert "Traceback" not in r.stdout + r.stderr and "internal error" not in r.stderr, (args, r.stdout, r.stderr)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    exported = json.loads((tmp_path / "export.json").read_text())
    assert exported["module_progress"]["completed_modules"] == [1, 2, 3]  # Tensor, Activations, Layers: by name


def test_python_dash_m_and_the_second_console_script(course):
    r = subprocess.run([sys.executable, "-m", "tinytorch_progress", "--root", str(course), "status", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["total_modules"] == 20, r.stderr
    ini = (ROOT / "settings.ini").read_text()
    assert "tito-progress=tinytorch_progress.cli.main:main" in ini and "tito=tinytorch_progress.cli.main:main" in ini


def test_the_second_console_script_is_installed_and_is_ours(course):
    script = Path(sys.executable).parent / "tito-progress"
    assert script.exists(), "pip install -e . creates tito-progress beside tito"
    r = subprocess.run([str(script), "--root", str(course), "status", "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["total_modules"] == 20, r.stderr


def test_commands_that_are_not_ours_go_to_the_course_cli(course, tmp_path):
    "The course's own `tito` package installed beside ours: its commands keep working under our `tito`."
    (tmp_path / "tito").mkdir()
    (tmp_path / "tito" / "__init__.py").write_text("")
    (tmp_path / "tito" / "main.py").write_text("import sys\ndef main():\n    print('course tito', sys.argv[1:])\n    return 4\n")
    env = {"PYTHONPATH": str(tmp_path)}
    r = run_tito("setup", "--fast", cwd=course, env=env)
    assert r.returncode == 4 and "course tito ['setup', '--fast']" in r.stdout, (r.stdout, r.stderr)
    r = run_tito("status", "--json", cwd=course, env=env)  # ours stays ours
    assert r.returncode == 0 and json.loads(r.stdout)["total_modules"] == 20, r.stderr
    r = run_tito("setup", cwd=course)  # without the course's CLI: one line saying how to get it
    assert r.returncode == 1 and "is a command of the course's own tito, which is not installed here" in r.stderr
    r = run_tito("bogus", cwd=course)  # not a command of either: our usage error
    assert r.returncode == 2 and "invalid choice: 'bogus'" in r.stderr
