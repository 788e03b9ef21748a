"""The student's inner loop (issue 14) in a real IPython kernel and in a real browser.

- A kernel started with jupyter_client, cells sent as JupyterLab sends them (with their cell ids): a module notebook
  with a bug → `%tito test` names the failing test, its cell and `[n]`, line and hint; the fix run but not saved →
  `%tito test` passes and `%tito complete` refuses with the save message and records nothing; saved →
  `%tito complete` records, and Next links to the next module's notebook. Every suggested command in the outputs is
  spelled `%tito …`.
- JupyterLab + Chromium (Playwright): the Next link of `%tito complete` opens the next module's notebook in JupyterLab.
"""
import contextlib, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

from conftest import jupyterlab_server

import pytest

pytestmark = pytest.mark.slow

nbformat = pytest.importorskip("nbformat")
jupyter_client = pytest.importorskip("jupyter_client")

HINT = "**Hint:** adding is `a + b`"
BUG, FIX = "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b"
TEST = "def test_unit_add():\n    x = add(2, 3)\n    assert x == 5, f'add(2, 3) gave {x}'"


def cell(kind, src, cid):
    c = (nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell)(src)
    c.id = cid
    return c


def module_notebook(add_source: str):
    nb = nbformat.v4.new_notebook(cells=[cell("md", "# Tensor", "title"), cell("code", "%load_ext tinytorch_progress", "load"),
                                         cell("md", HINT, "hint"), cell("code", add_source, "add"), cell("code", TEST, "test"),
                                         cell("code", "%tito test", "check")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def make_course(ws: Path) -> Path:
    subprocess.run([sys.executable, "-m", "tinytorch_progress.cli.main", "init", str(ws)], check=True, capture_output=True)
    nb = ws / "modules/01_tensor/01_tensor.ipynb"; nb.parent.mkdir(parents=True)
    nbformat.write(module_notebook(BUG), nb)
    nxt = ws / "modules/02_activations/02_activations.ipynb"; nxt.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Activations, the next module")]), nxt)
    return nb


def kernel_env(base: Path, session: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TITO_ROOT"}
    env.update(IPYTHONDIR=str(base / "ipython"), JUPYTER_RUNTIME_DIR=str(base / "rt"), TITO_NO_SYNC="1", MPLBACKEND="Agg",
               JPY_SESSION_NAME=session)  # what JupyterLab tells the kernel: the notebook's path (`__session__`)
    return env


class Kernel:
    "A real ipykernel; `run(code, cell_id)` sends an execute_request as JupyterLab does and collects the outputs."
    def __init__(self, cwd: Path, env: dict):
        self.km = jupyter_client.KernelManager(kernel_name="python3")
        self.km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client(); self.kc.start_channels(); self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, cell_id: str, timeout: float = 180) -> dict:
        msg = self.kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                                      "allow_stdin": False, "stop_on_error": True}, metadata={"cellId": cell_id})
        self.kc.shell_channel.send(msg)
        out = {"count": None, "plain": [], "html": [], "errors": [], "stream": []}
        deadline = time.monotonic() + timeout
        while True:
            m = self.kc.get_iopub_msg(timeout=max(1, deadline - time.monotonic()))
            if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]: continue
            t, c = m["msg_type"], m["content"]
            if t == "execute_input": out["count"] = c["execution_count"]
            elif t in ("execute_result", "display_data"):
                out["plain"].append(c["data"].get("text/plain", "")); out["html"].append(c["data"].get("text/html", ""))
            elif t == "error": out["errors"].append(f"{c['ename']}: {c['evalue']}")
            elif t == "stream": out["stream"].append(c["text"])
            elif t == "status" and c["execution_state"] == "idle": return out

    def close(self):
        self.kc.stop_channels(); self.km.shutdown_kernel(now=True)


def suggested_commands(text: str) -> list[str]:
    "Each `tito COMMAND` a text suggests, with what precedes it (`%` in a notebook)."
    return re.findall(r"\S?tito (?=[a-z])", re.sub(r"<[^>]*>", " ", text))


def completed(ws: Path) -> list:
    return json.loads((ws / ".tito/progress.json").read_text())["completed_modules"]


@pytest.fixture
def course(tmp_path):
    ws = tmp_path / "course"
    nb = make_course(ws)
    k = Kernel(nb.parent, kernel_env(tmp_path, str(nb)))
    try: yield ws, nb, k
    finally: k.close()


def test_test_and_complete_in_a_real_kernel(course):
    ws, nb, k = course
    outputs = []
    def run(code, cid):
        r = k.run(code, cid); outputs.append(r); return r

    assert not run("%load_ext tinytorch_progress", "load")["errors"]
    run(BUG, "add"); t = run(TEST, "test")
    r = run("%tito test", "check")  # the bug: the failing test, its cell as JupyterLab shows it, the line, the hint
    html, plain = "".join(r["html"]), "".join(r["plain"])
    assert not r["errors"], r["errors"]
    assert "data-test='test_unit_add' data-passed='false'" in html, html
    assert f"cell 5 [{t['count']}], line 3" in html and "AssertionError: add(2, 3) gave -1" in html, (t, plain)
    assert "hint: adding is `a + b`" in plain and "tests failed" in plain
    assert completed(ws) == []

    fix = run(FIX, "add")  # the fix, run in the kernel but not saved
    r = run("%tito test", "check")
    assert "data-passed='true'" in "".join(r["html"]) and "all tests passed" in "".join(r["plain"]), r
    r = run("%tito complete", "check")
    plain = "".join(r["plain"])
    assert f"cell 4 [{fix['count']}] was run with code the saved notebook does not hold; save the notebook (Ctrl/Cmd+S)" in plain, r
    assert "`%tito complete` again" in plain and "tests failed" not in plain
    assert len(plain.strip().splitlines()) == 1 and completed(ws) == []  # one line, nothing recorded

    nbformat.write(module_notebook(FIX), nb)  # Ctrl+S
    r = run("%tito complete", "check")
    html = "".join(r["html"])
    assert completed(ws) == [1], r
    assert "Completed module 01 (Tensor)" in html and "href='../02_activations/02_activations.ipynb'" in html
    assert "<code>%tito module start 02</code>" in html and "%tito milestone run 01" in html  # Next, and the unlocked milestone
    r = run("%tito status", "status")
    assert "tito-stats" in "".join(r["html"]) and "this week" in "".join(r["plain"])
    r = run("%tito help", "help")
    assert "Your commands" in "".join(r["html"]) and "Course staff" in "".join(r["html"])

    said = [p for o in outputs for p in suggested_commands("".join(o["html"]) + "".join(o["plain"]) + "".join(o["errors"]))]
    assert said and all(p.startswith("%") for p in said), said  # every suggested command is the magic


def test_refused_skip_tests_and_errors_suggest_the_magic(course):
    ws, nb, k = course
    cur = json.loads((Path(__file__).resolve().parents[1] / "tinytorch_progress/curriculum.json").read_text())
    (ws / ".tito/curriculum.json").write_text(json.dumps({**cur, "allow_skip_tests": False}))
    k.run("%load_ext tinytorch_progress", "load")
    r = k.run("%tito complete --skip-tests", "check")
    said = "".join(r["errors"] + r["stream"])  # IPython shows a UsageError as one line on stderr
    assert "this course requires tests" in said and "Traceback" not in said, r
    assert completed(ws) == []
    (ws / "modules/01_tensor/01_tensor.ipynb").unlink()
    r = k.run("%tito test 01", "check")
    said = "".join(r["errors"] + r["stream"])
    assert "no tests found for module 01" in said and suggested_commands(said) and all(p.startswith("%") for p in suggested_commands(said)), said


# ---------------------------------------------------------------- the ordinary loop, with the extension loaded last (issue 27)
def last_cell_notebook(add_source: str, extra=()):
    "The demo's shape: the module's cells first, `%load_ext tinytorch_progress` in the last cell."
    nb = nbformat.v4.new_notebook(cells=[cell("md", "# Tensor", "title"), cell("code", add_source, "add"), cell("code", TEST, "test"),
                                         *extra, cell("code", "%load_ext tinytorch_progress", "load")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_fix_rerun_save_complete_with_the_extension_loaded_last(course):
    "Run All, break a cell, fix it in place, run it, save: `%tito complete` records (it refused forever before)."
    ws, nb, k = course
    nbformat.write(last_cell_notebook(FIX), nb)
    for code, cid in ((FIX, "add"), (TEST, "test"), ("%load_ext tinytorch_progress", "load")): assert not k.run(code, cid)["errors"]
    k.run(BUG, "add")                                   # break the cell, run it
    assert "tests failed" in "".join(k.run("%tito test", "scratch-1")["plain"])
    k.run(FIX, "add")                                   # fix it in place, run it
    assert "all tests passed" in "".join(k.run("%tito test", "scratch-1")["plain"])
    nbformat.write(last_cell_notebook(FIX), nb)         # Ctrl+S (the file already held the fix)
    r = k.run("%tito complete", "scratch-1")
    assert completed(ws) == [1], r


def test_a_deleted_scratch_cell_never_blocks_complete(course):
    ws, nb, k = course
    nbformat.write(last_cell_notebook(FIX), nb)
    for code, cid in ((FIX, "add"), (TEST, "test"), ("%load_ext tinytorch_progress", "load")): k.run(code, cid)
    k.run("scratch = add(40, 2)\nscratch", "scratch-cell")  # run, then deleted: the saved file never held it
    r = k.run("%tito complete", "another-scratch")
    assert completed(ws) == [1], r


def test_an_edited_unsaved_cell_blocks_and_a_failing_saved_run_points_at_the_passing_code(course):
    ws, nb, k = course
    nbformat.write(last_cell_notebook(BUG), nb)         # the saved file holds the bug
    for code, cid in ((BUG, "add"), (TEST, "test"), ("%load_ext tinytorch_progress", "load")): k.run(code, cid)
    fix = k.run(FIX, "add")                             # fixed and run, not saved: cell 2 differs from the file
    r = k.run("%tito complete", "scratch")
    plain = "".join(r["plain"])
    assert f"cell 2 [{fix['count']}] was run with code the saved notebook does not hold" in plain and completed(ws) == [], r
    k.run(BUG, "add"); other = k.run(FIX, "elsewhere")  # the passing code now lives in a cell the file does not hold
    r = k.run("%tito complete", "scratch")
    plain = "".join(r["plain"])
    assert f"ran as [{other['count']}], which the saved notebook does not hold" in plain, plain
    assert "paste it into the notebook and save" in plain and "restart the kernel and run all cells" in plain
    assert completed(ws) == []


def test_a_failure_report_points_at_the_code(course):
    "A bare assert shows the values compared; an error raised in the student's function names its cell and line."
    ws, nb, k = course
    k.run("%load_ext tinytorch_progress", "load")
    nbformat.write(last_cell_notebook(BUG), nb)
    k.run(BUG, "add")
    bare = "def test_unit_add():\n    x = add(2, 3)\n    assert x == 5"
    k.run(bare, "test")
    plain = "".join(k.run("%tito test", "check")["plain"])
    assert "AssertionError: assert x == 5 (x = -1)" in plain and "test line 3: assert x == 5" in plain, plain
    broken = k.run("def add(a, b):\n    total = a + b\n    return total + bias", "add")
    plain = "".join(k.run("%tito test", "check")["plain"])
    assert "NameError: name 'bias' is not defined" in plain, plain
    assert f"raised in cell 2 [{broken['count']}], line 3 in add: return total + bias" in plain, plain
    assert "\x1b[" not in plain and str(ws) not in plain  # no colour codes, no path of this machine


# ---------------------------------------------------------------- the Next link in JupyterLab


@contextlib.contextmanager
def jupyterlab(ws: Path, base: Path):
    "JupyterLab serving `ws` with a kernel environment of its own; yields (url, token)."
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"; settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = kernel_env(base, "")
    env.pop("JPY_SESSION_NAME")
    env.update(JUPYTER_CONFIG_DIR=str(base / "cfg"), JUPYTER_DATA_DIR=str(base / "data"), JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"))
    with jupyterlab_server(ws, base, env) as (url, token):
        yield url, token


def run_cell(page, cell, timeout=120_000):
    "Run `cell` with Ctrl+Enter and wait until its prompt shows an execution count."
    from playwright.sync_api import expect
    prompt = cell.locator(".jp-InputArea-prompt")
    for attempt in (1, 2):  # a key press sent while the kernel was still starting can be lost on a busy machine
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        try: return expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=timeout // 2)
        except AssertionError:
            if attempt == 2: raise


@contextlib.contextmanager
def first_module_in_chromium(ws: Path, base: Path, last_cell: int, height: int = 900):
    "Chromium on JupyterLab's tab of `ws`'s first module notebook, until cell `last_cell` shows and the kernel is idle; yields (playwright's sync API, page, cells)."
    chromium = shutil.which("chromium")
    if chromium is None: pytest.skip("Debian `chromium` is not on PATH (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with jupyterlab(ws, base) as (url, token), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": height})
            page.set_default_timeout(90_000)  # JupyterLab with a kernel, on a busy machine: 30 s is not always enough for a click
            page.goto(f"{url}/lab/tree/modules/01_tensor/01_tensor.ipynb?token={token}")
            cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            cells.nth(last_cell).wait_for(timeout=120_000)
            try: page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=120_000)
            except Exception: pass  # an older JupyterLab has no indicator: run_cell retries instead
            yield sync_api, page, cells
        finally: browser.close()


def test_next_module_link_opens_in_jupyterlab(tmp_path):
    ws = tmp_path / "course"
    nb = make_course(ws)
    nbformat.write(module_notebook(FIX), nb)
    out = Path(__file__).resolve().parents[1] / "test-output"
    with first_module_in_chromium(ws, tmp_path, last_cell=5) as (sync_api, page, cells):
        for i in (1, 3, 4): run_cell(page, cells.nth(i))
        last = cells.nth(5)
        last.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+a"); page.keyboard.type("%tito complete")
        page.keyboard.press("Control+s")  # saved: the kernel ran what the file holds
        time.sleep(1)
        page.keyboard.press("Control+Enter")
        link = last.locator("a.tito-next-link")
        link.wait_for(timeout=180_000)
        # the output's relative link, resolved by JupyterLab against the notebook (it opens a tab, not a page)
        assert link.get_attribute("href").split("?")[0].endswith("/files/modules/02_activations/02_activations.ipynb")
        out.mkdir(exist_ok=True); last.screenshot(path=str(out / "jupyterlab-next-module-link.png"))
        assert completed(ws) == [1]
        link.click()
        sync_api.expect(page.locator(".lm-TabBar-tab", has_text="02_activations.ipynb").first).to_be_visible(timeout=60_000)
        sync_api.expect(page.get_by_role("heading", name="Activations, the next module")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(out / "jupyterlab-next-module-opened.png"))


# ---------------------------------------------------------------- the loop in JupyterLab, as a student does it (issue 27)
LOOP_FIX = "def add(a, b): return a + b"
LOOP_TEST = "def test_unit_add(): x = add(2, 3); assert x == 5"


def set_cell(page, cell, text: str):
    "Replace a cell's code by typing it (one line: the editor's auto-indent cannot change it)."
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+a"); page.keyboard.type(text)


def output_text(cell) -> str:
    return cell.locator(".jp-OutputArea").inner_text()


def test_the_loop_in_jupyterlab(tmp_path):
    """Run the cells (the extension loads in the last), break a function, test, fix it in place, test, save, run and
    delete a scratch cell, complete: recorded — and the failure report names the student's own cell and line."""
    ws = tmp_path / "course"
    nb = make_course(ws)
    book = nbformat.v4.new_notebook(cells=[cell("md", "# Tensor", "title"), cell("code", LOOP_FIX, "add"), cell("code", LOOP_TEST, "test"),
                                           cell("code", "%load_ext tinytorch_progress", "load")])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, nb)
    out = Path(__file__).resolve().parents[1] / "test-output"
    with first_module_in_chromium(ws, tmp_path, last_cell=3, height=1000) as (sync_api, page, cells):
        expect = sync_api.expect
        for i in (1, 2, 3): run_cell(page, cells.nth(i))      # the module's cells, then %load_ext (the last cell)
        set_cell(page, cells.nth(1), "def add(a, b): return a + b + bias"); run_cell(page, cells.nth(1))  # break it
        cells.nth(3).click(); page.keyboard.press("Escape"); page.keyboard.press("b")  # a scratch cell below
        scratch = cells.nth(4)
        set_cell(page, scratch, "%tito test"); run_cell(page, scratch)
        expect(scratch.locator(".tito-checks")).to_be_visible(timeout=120_000)
        report = output_text(scratch)
        assert "NameError: name 'bias' is not defined" in report and "raised in cell 2 [" in report and "line 1 in add" in report, report
        assert "\x1b[" not in report and str(tmp_path) not in report
        set_cell(page, cells.nth(1), LOOP_FIX); run_cell(page, cells.nth(1))  # fixed in place
        run_cell(page, scratch)
        expect(scratch.locator(".tito-checks")).to_contain_text("all tests passed", timeout=120_000)
        page.keyboard.press("Control+s"); time.sleep(1)
        scratch.click(); page.keyboard.press("Escape"); page.keyboard.press("b")  # another scratch cell: run, then deleted
        other = cells.nth(5)
        set_cell(page, other, "scratch = add(40, 2)"); run_cell(page, other)
        page.keyboard.press("Escape"); page.keyboard.press("d"); page.keyboard.press("d")
        expect(cells).to_have_count(5, timeout=10_000)
        set_cell(page, scratch, "%tito complete"); run_cell(page, scratch)
        expect(scratch.locator(".tito-change")).to_contain_text("Completed module 01 (Tensor)", timeout=180_000)
        out.mkdir(exist_ok=True); scratch.screenshot(path=str(out / "jupyterlab-loop-completed.png"))
        assert completed(ws) == [1]
