"""The panel in a real browser: JupyterLab (headless, 127.0.0.1) driven by Playwright with Debian's chromium.

Runs `%load_ext tinytorch_progress`, `%tito status` and `%tito complete 01` (whose real tests pass and which unlocks
"1957: Perceptron") in a notebook, checks the widget panel and the unlock banner in the DOM, refreshes the panel in
place, saves the notebook and checks every panel output carries text/plain and text/html. Screenshots go to
test-output/ (gitignored; CI keeps them as artifacts).

Then the Next link after a completion, in the demo course (served from the folder above it): it opens the next
module inside JupyterLab as a new tab without reloading the page — from a tree URL with another notebook unsaved (no
"Leave site?" prompt), and from `/lab` — and in a new browser tab in Jupyter Notebook 7. The demo notebooks load the
extension in their last cell; the tests run them as a student does and add `%tito complete` below.
"""
import json, os, re, shutil, socket, subprocess, sys, time
from pathlib import Path

from conftest import jupyterlab_server

import pytest

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian `chromium` is not on PATH (apt-get install chromium)")]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
sync_api = pytest.importorskip("playwright.sync_api")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
CELLS = ["%load_ext tinytorch_progress", "%tito status", "%tito complete 01", "%tito milestone progress", "%tito plot milestones"]
MODULE_NB = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": "def add(a, b):\n    return a + b\n\ndef test_add():\n    assert add(2, 3) == 5\n"}],
             "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_workspace(ws: Path):
    subprocess.run([sys.executable, "-m", "tinytorch_progress.cli.main", "init", str(ws)], check=True, capture_output=True)
    for key, slug in (("01", "tensor"), ("02", "activations"), ("03", "layers")):
        d = ws / "modules" / f"{key}_{slug}"; d.mkdir(parents=True)
        (d / f"{key}_{slug}.ipynb").write_text(json.dumps(MODULE_NB))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, ws / "progress.ipynb")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("jlab")
    ws = base / "course"
    make_workspace(ws)
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {k: v for k, v in os.environ.items() if k != "TITO_ROOT"}
    env.update(JUPYTER_CONFIG_DIR=str(base / "cfg"), JUPYTER_DATA_DIR=str(base / "data"), JUPYTER_RUNTIME_DIR=str(base / "rt"),
               IPYTHONDIR=str(base / "ipython"), JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"), TITO_NO_SYNC="1", MPLBACKEND="Agg")
    with jupyterlab_server(ws, base, env) as (url, token):
        yield url, token, ws, env


def run_cell(page, i: int, timeout=90_000):
    "Select cell `i`, run it with Ctrl+Enter (no new cell), wait until it has an execution count."
    cell = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(i)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    sync_api.expect(cell.locator(".jp-InputArea-prompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=timeout)
    return cell


def test_panel_and_unlock_banner_in_jupyterlab(lab):
    url, token, ws, env = lab
    OUT.mkdir(exist_ok=True)
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(90_000)  # JupyterLab with a kernel, on a busy machine
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/lab/tree/progress.ipynb?token={token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
            # the kernel is connected and idle (the status bar says so), and the notebook has settled
            expect(page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle"))).to_be_visible(timeout=90_000)
            page.wait_for_timeout(1000)

            run_cell(page, 0)
            status_cell = run_cell(page, 1)
            panel = status_cell.locator(".jp-OutputArea-output .tito-panel")
            expect(panel).to_be_visible(timeout=30_000)
            # the widget view rendered (not the HTML fallback): ipywidgets' DOM with our panel inside
            expect(panel.locator(".tito-bar.widget-hprogress")).to_have_count(1)
            expect(panel.locator(".tito-pct")).to_have_text("0/20 modules (0%)")
            expect(panel.locator(".tito-mod")).to_have_count(20)
            expect(panel.locator(".tito-tier")).to_have_count(4)
            expect(panel.locator(".tito-ms")).to_have_count(6)
            expect(panel.locator(".tito-ms[data-milestone='01']")).to_have_attribute("data-state", "locked")
            expect(panel.locator(".tito-next")).to_contain_text("%tito module start 01")
            expect(panel.locator(".tito-header")).to_contain_text("TinyTorch progress")
            expect(panel.locator("button", has_text="Refresh")).to_be_visible()
            bar = panel.locator(".tito-bar .progress-bar")
            assert bar.evaluate("e => e.style.width") in ("0%", "0px", "")
            status_cell.screenshot(path=str(OUT / "jupyterlab-status-panel.png"))

            done_cell = run_cell(page, 2)  # runs module 01's real tests, records it, unlocks 1957: Perceptron
            banner = done_cell.locator(".jp-OutputArea-output .tito-banner.tito-unlock")
            expect(banner).to_be_visible(timeout=30_000)
            expect(banner).to_contain_text("1957: Perceptron unlocked — re-create it with %tito milestone run 01")
            expect(done_cell.locator(".tito-tests-passed")).to_contain_text("tests passed")
            # the earlier panel refreshed itself in place
            expect(panel.locator(".tito-pct")).to_have_text("1/20 modules (5%)", timeout=15_000)
            expect(panel.locator(".tito-mod[data-module='01']")).to_have_attribute("data-state", "completed")
            expect(panel.locator(".tito-ms[data-milestone='01']")).to_have_attribute("data-state", "unlocked")
            assert bar.evaluate("e => e.style.width") == "5%"
            done_cell.screenshot(path=str(OUT / "jupyterlab-unlock-banner.png"))

            # a change made in the terminal shows after pressing Refresh, without re-running the cell
            r = subprocess.run([sys.executable, "-m", "tinytorch_progress.cli.main", "--root", str(ws), "complete", "02", "--skip-tests"],
                               capture_output=True, text=True, env=env, timeout=60)
            assert r.returncode == 0, r.stderr
            panel.locator("button", has_text="Refresh").click()
            expect(panel.locator(".tito-pct")).to_have_text("2/20 modules (10%)", timeout=15_000)
            expect(panel.locator(".tito-note")).to_contain_text("refreshed")
            expect(panel.locator(".tito-ms[data-milestone='02']")).to_have_attribute("data-state", "unlocked")
            status_cell.screenshot(path=str(OUT / "jupyterlab-status-panel-refreshed.png"))

            ms_cell = run_cell(page, 3)
            expect(ms_cell.locator(".tito-panel .tito-ms")).to_have_count(6, timeout=30_000)
            plot_cell = run_cell(page, 4)
            img = plot_cell.locator(".jp-OutputArea-output img")
            expect(img).to_be_visible(timeout=30_000)
            assert img.evaluate("e => e.naturalWidth") > 400
            ms_cell.screenshot(path=str(OUT / "jupyterlab-milestones-panel.png"))
            plot_cell.screenshot(path=str(OUT / "jupyterlab-plot.png"))

            before = (ws / "progress.ipynb").stat().st_mtime_ns
            page.locator(".jp-NotebookPanel .jp-Notebook").click(position={"x": 5, "y": 5})
            page.keyboard.press("Control+s")
            deadline = time.monotonic() + 30
            while (ws / "progress.ipynb").stat().st_mtime_ns == before:
                assert time.monotonic() < deadline, "the notebook was not saved"
                time.sleep(0.2)
            assert not [e for e in errors if "tito" in e.lower()], errors
        finally:
            browser.close()

    nb = nbformat.read(ws / "progress.ipynb", as_version=4)
    panels = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_MIME in data:
                panels.append((cell.source, data))
                assert "text/plain" in data and "text/html" in data, (cell.source, sorted(data))
    assert [src for src, _ in panels] == ["%tito status", "%tito milestone progress"]  # a change is HTML, never a widget
    status_data = panels[0][1]
    assert "01  Tensor" in status_data["text/plain"] and "tito-status" in status_data["text/html"]
    [change] = [o["data"] for c in nb.cells if c.source == "%tito complete 01" for o in c.outputs if "data" in o]
    assert sorted(change) == ["text/html", "text/plain"]
    assert "1957: Perceptron unlocked" in change["text/html"] and "1957: Perceptron unlocked" in change["text/plain"]
    plot = [o for c in nb.cells if c.source == "%tito plot milestones" for o in c.outputs]
    assert plot and {"image/png", "text/plain"} <= set(plot[0]["data"])


# ---------------------------------------------------------------- Next opens the next module inside the application

@pytest.fixture(scope="module")
def course(lab):
    "The demo course in a folder of the served one: modules 01 and 02 completed (their tests ran), 03 started."
    from tinytorch_progress.demo import build_demo
    url, token, ws, env = lab
    return build_demo(ws / "demo", log=lambda *a: None)


@pytest.fixture
def browser():
    "A headless chromium; its pages report every dialog (a \"Leave site?\" prompt is one) in `page.dialogs`."
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try: yield b
        finally: b.close()


def new_page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(90_000)  # JupyterLab with a kernel, on a busy machine
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.type), d.dismiss()))
    return page


def in_file_browser(page, path: str):
    "Open `path` (from the server's root) by double-clicks in JupyterLab's file browser, as a student would."
    page.locator(".jp-FileBrowser .jp-BreadCrumbs-home").click()
    for part in path.split("/"):
        name = page.locator(".jp-FileBrowser .jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(part)}$"))
        name.dblclick(timeout=30_000)


def run_all(page, panel):
    "Run → Run All Cells, once the notebook's kernel is idle (choosing the notebook's Python kernel if asked, as a student would)."
    sync_api.expect(panel.locator(".jp-Cell").first).to_be_visible(timeout=90_000)
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    page.wait_for_timeout(1000)
    if dialog.is_visible(): dialog.locator(".jp-mod-accept").click()
    sync_api.expect(panel.locator(".jp-Toolbar .jp-KernelName")).to_contain_text("Python 3", timeout=90_000)
    sync_api.expect(panel.locator(".jp-Toolbar .jp-KernelStatus-fade, .jp-Toolbar [data-status='idle']").first).to_be_attached(timeout=90_000)
    page.locator(".lm-MenuBar-item", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-item:visible", has_text=re.compile("^Run All Cells")).click()
    page.wait_for_timeout(1000)
    if dialog.is_visible(): dialog.locator(".jp-mod-accept").click()


def run_all_and_complete(page, timeout=180_000):
    "Run every cell of the visible notebook (its last one loads the extension), then `%tito complete` in a new cell below."
    panel = page.locator(".jp-NotebookPanel:visible")
    expect = sync_api.expect
    run_all(page, panel)
    last = panel.locator(".jp-Cell").last
    expect(last.locator(".tito-panel, .tito-status").first).to_be_visible(timeout=timeout)  # `%load_ext …` then `%tito status` ran
    last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape"); page.keyboard.press("b"); page.keyboard.press("Enter")
    page.keyboard.type("%tito complete")
    page.keyboard.press("Control+Enter")
    link = panel.locator(".jp-Cell").last.locator(".tito-change .tito-next-link")
    expect(link).to_be_visible(timeout=timeout)
    return link


def current_tab(page):
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")


def follow_next(page, link) -> str:
    "Click Next; the page is the same one (nothing reloaded, no prompt) and the notebook it names is the current tab."
    name = link.inner_text()
    page.evaluate("window.titoMarker = 42")
    link.click()
    sync_api.expect(current_tab(page)).to_have_text(name, timeout=30_000)
    sync_api.expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_be_visible(timeout=30_000)
    assert page.evaluate("window.titoMarker") == 42, "the page was reloaded"
    assert page.dialogs == [], page.dialogs
    return name


def test_next_opens_a_tab_from_a_tree_url_with_another_notebook_unsaved(lab, course, browser):
    url, token, ws, env = lab
    page = new_page(browser)
    page.goto(f"{url}/lab/tree/demo/modules/03_layers/03_layers.ipynb?token={token}")
    sync_api.expect(current_tab(page)).to_have_text("03_layers.ipynb", timeout=90_000)
    in_file_browser(page, "demo/modules/01_tensor/01_tensor.ipynb")          # another notebook, left unsaved
    sync_api.expect(current_tab(page)).to_have_text("01_tensor.ipynb", timeout=30_000)
    editor = page.locator(".jp-NotebookPanel:visible .jp-CodeCell .jp-InputArea-editor").first
    sync_api.expect(editor).to_be_visible(timeout=30_000)
    editor.click()
    page.keyboard.press("End"); page.keyboard.type("  # an edit not saved")
    tensor_tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="01_tensor.ipynb")
    sync_api.expect(tensor_tab).to_have_class(re.compile("jp-mod-dirty"))
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="03_layers.ipynb").click()
    link = run_all_and_complete(page)
    assert link.get_attribute("href").split("?")[0].endswith("/files/demo/modules/04_losses/04_losses.ipynb")  # resolved by JupyterLab
    assert follow_next(page, link) == "04_losses.ipynb"
    sync_api.expect(tensor_tab).to_have_class(re.compile("jp-mod-dirty"))    # still open, still unsaved
    page.screenshot(path=str(OUT / "jupyterlab-next-from-tree-url.png"))
    assert "/lab/tree/demo/modules/04_losses/04_losses.ipynb" in page.url


def test_next_opens_a_tab_from_lab(lab, course, browser):
    url, token, ws, env = lab
    page = new_page(browser)
    page.goto(f"{url}/lab?reset&token={token}")  # the bare application URL, with no document in it
    sync_api.expect(page.locator(".jp-FileBrowser .jp-DirListing-item").first).to_be_visible(timeout=90_000)
    assert re.search(r"/lab/?(\?|$)", page.url), page.url
    in_file_browser(page, "demo/modules/05_autograd/05_autograd.ipynb")
    sync_api.expect(current_tab(page)).to_have_text("05_autograd.ipynb", timeout=30_000)
    link = run_all_and_complete(page)
    name = follow_next(page, link)
    assert name.endswith(".ipynb") and name != "05_autograd.ipynb", name


def test_next_opens_a_browser_tab_in_notebook_7(lab, course, browser):
    pytest.importorskip("notebook", reason="Jupyter Notebook 7 is not installed")
    url, token, ws, env = lab
    page = new_page(browser)
    r = page.goto(f"{url}/notebooks/demo/modules/07_training/07_training.ipynb?token={token}")
    if r is None or r.status == 404: pytest.skip("the server does not serve Notebook 7's pages")
    panel = page.locator(".jp-NotebookPanel")
    run_all(page, panel)
    last = panel.locator(".jp-Cell").last
    sync_api.expect(last.locator(".tito-panel, .tito-status").first).to_be_visible(timeout=180_000)
    last.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape"); page.keyboard.press("b"); page.keyboard.press("Enter")
    page.keyboard.type("%tito complete")
    page.keyboard.press("Control+Enter")
    link = panel.locator(".jp-Cell").last.locator(".tito-change .tito-next-link")
    sync_api.expect(link).to_be_visible(timeout=180_000)
    name, before = link.inner_text(), page.url
    page.evaluate("window.titoMarker = 42")
    with page.context.expect_page(timeout=30_000) as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url.split("?")[0].endswith(f"/notebooks/demo/modules/{name.removesuffix('.ipynb')}/{name}"), tab.url
    assert page.url == before and page.evaluate("window.titoMarker") == 42 and page.dialogs == []
