"`%tito` in a real IPython shell and in a real notebook executed by a Jupyter kernel."
import json
import nbformat, pytest
from IPython.core.error import UsageError
from conftest import ipython_shell
from tinytorch_progress.doctor import init_workspace


@pytest.fixture(scope="module")
def ip():
    return ipython_shell()


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    init_workspace(tmp_path)
    d = tmp_path / "modules" / "01_tensor"; d.mkdir(parents=True)
    monkeypatch.chdir(d)
    monkeypatch.delenv("TITO_ROOT", raising=False)
    return d


def test_status_start_complete_in_a_module_folder(ip, module_dir):
    assert ip.run_line_magic("tito", "start").data()["module"] == "01"
    r = ip.run_line_magic("tito", "complete --skip-tests")
    assert r.data()["unlocked"] == ["01"] and "1957: Perceptron unlocked" in r.text()
    st = ip.run_line_magic("tito", "status")
    bundle = st._repr_mimebundle_()
    assert "text/plain" in bundle and "text/html" in bundle
    assert st.status.completed_count == 1
    assert "01  1957: Perceptron" in ip.run_line_magic("tito", "milestone progress").text()


@pytest.mark.parametrize("line,msg", [("bogus", "invalid choice"), ("module", "missing ACTION"), ("status --nope", "unrecognized"),
                                      ("start 42", "not in the curriculum"), ("milestone complete 05", "locked")])
def test_bad_input_is_a_one_line_usage_error(ip, module_dir, line, msg):
    with pytest.raises(UsageError, match=msg) as e:
        ip.run_line_magic("tito", line)
    assert "\n" not in str(e.value).strip()


def test_notebook_path_from_the_kernel_wins_over_the_folder(ip, module_dir, tmp_path):
    other = tmp_path / "modules" / "05_autograd"; other.mkdir(parents=True)
    ip.user_ns["__vsc_ipynb_file__"] = str(other / "05_autograd.ipynb")
    try: assert ip.run_line_magic("tito", "start").data()["module"] == "05"
    finally: del ip.user_ns["__vsc_ipynb_file__"]


def test_magic_arguments_are_shell_quoted(ip, tmp_path, monkeypatch):
    init_workspace(tmp_path); monkeypatch.chdir(tmp_path)
    # quotes are removed as a shell removes them (IPython's own splitter would keep them, and `'alice'` is not a valid id)
    ip.run_line_magic("tito", "login --server 'http://127.0.0.1:9' --token t --user-id 'alice'")
    assert json.loads((tmp_path / ".tito" / "config.json").read_text())["user_id"] == "alice"
    ip.run_line_magic("tito", 'export -o "my file.json"')
    assert json.loads((tmp_path / "my file.json").read_text())["user_id"] == "alice"


def test_help_lists_the_command_set(ip, module_dir):
    text = ip.run_line_magic("tito", "help").text()
    for cmd in ("status", "start", "complete", "milestone"): assert cmd in text


# A kernel, then the module's tests and its export in child processes: 4 s. A real kernel's `%tito complete` stays in
# the quick loop in test_views.py.
@pytest.mark.slow
def test_a_real_notebook_runs_start_complete_status(module_dir):
    from nbclient import NotebookClient
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("def double(x):\n    return 2 * x"),
        nbformat.v4.new_code_cell("def test_unit_double():\n    assert double(2) == 4"),
        nbformat.v4.new_code_cell("%load_ext tinytorch_progress"),
        nbformat.v4.new_code_cell("%tito start"),
        nbformat.v4.new_code_cell("%tito complete"),
        nbformat.v4.new_code_cell("%tito status --progress"),
    ])
    path = module_dir / "01_tensor.ipynb"
    nbformat.write(nb, path)  # `%tito complete` runs this notebook's tests from disk
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(module_dir)}}).execute()
    out = lambda i: "".join(o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in nb.cells[i].outputs)
    assert "Started module 01 (Tensor)" in out(3)
    assert "Completed module 01 (Tensor)" in out(4) and "tests passed" in out(4)
    assert "01  Tensor" in out(5) and "✓ completed" in out(5)
    for i in (3, 4, 5):
        assert any("text/html" in o.get("data", {}) for o in nb.cells[i].outputs)
    saved = json.loads((module_dir.parents[1] / ".tito" / "progress.json").read_text())
    assert saved["completed_modules"] == [1] and "1" in saved["completion_dates"]
    events = [json.loads(l) for l in (module_dir.parents[1] / ".tito" / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events][:3] == ["open", "start", "complete"] and events[0]["module"] == 1


def test_test_runs_in_the_shell_and_complete_wants_the_fix_saved(ip, module_dir):
    """Without cell ids (an IPython shell) nothing is refused up front: the saved notebook's run decides, and when it fails
    while the kernel's tests pass, the message says where the passing code ran and the two ways out."""
    nb = module_dir / "01_tensor.ipynb"
    cells = ["%load_ext tinytorch_progress", "def add(a, b):\n    return a - b", "def test_add():\n    assert add(1, 2) == 3, 'add'"]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), nb)
    ip.user_ns["__vsc_ipynb_file__"] = str(nb)
    try:
        for c in cells[1:]: ip.run_cell(c, store_history=True)
        r = ip.run_line_magic("tito", "test")
        assert not r.ok and r.data()["tests"][0]["cell"] == 3 and r.data()["tests"][0]["execution_count"] is not None
        ip.run_cell("def add(a, b):\n    return a + b", store_history=True)  # the fix, not saved
        assert ip.run_line_magic("tito", "test").ok
        c = ip.run_line_magic("tito", "complete")
        assert not c.ok and "the code that passed in this kernel ran as [" in c.text(), c.text()
        assert "paste it into the notebook and save (Ctrl/Cmd+S), or restart the kernel and run all cells" in c.text()
        assert json.loads((module_dir.parents[1] / ".tito/progress.json").read_text())["completed_modules"] == []
        cells[1] = "def add(a, b):\n    return a + b"  # saved: the earlier buggy run is superseded by the re-run of the same cell
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), nb)
        c = ip.run_line_magic("tito", "complete")
        assert c.ok, c.text()
        assert json.loads((module_dir.parents[1] / ".tito/progress.json").read_text())["completed_modules"] == [1]
    finally: ip.user_ns.pop("__vsc_ipynb_file__", None)


def test_a_bug_of_ours_is_one_line_with_the_tito_debug_escape(ip, module_dir, monkeypatch):
    from IPython.core.error import UsageError
    from tinytorch_progress import tracker
    def broken(*a, **k): raise RuntimeError("boom\nsecond line")
    monkeypatch.setattr(tracker, "status", broken)
    with pytest.raises(UsageError, match=r"^internal error: RuntimeError: boom \(set TITO_DEBUG=1 for the traceback\)$"):
        ip.run_line_magic("tito", "status")
    monkeypatch.setenv("TITO_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"): ip.run_line_magic("tito", "status")


def test_the_courses_own_commands_are_handed_over_from_the_magic(ip, module_dir, tmp_path, monkeypatch):
    from IPython.core.error import UsageError
    with pytest.raises(UsageError, match="is a command of the course's own tito, which is not installed here"):
        ip.run_line_magic("tito", "system doctor")  # not "invalid choice": the course's, and how to get it
    course = tmp_path / "course-cli"; (course / "tito").mkdir(parents=True)
    (course / "tito" / "__init__.py").write_text("")
    (course / "tito" / "main.py").write_text("import sys\ndef main():\n    print('course tito', sys.argv[1:])\n    return 0\n")
    monkeypatch.syspath_prepend(str(course)); monkeypatch.setenv("PYTHONPATH", str(course))
    r = ip.run_line_magic("tito", "system doctor")
    assert r.ok and r.text() == "course tito ['system', 'doctor']"
