"""The panel in a real browser: JupyterLab (headless, 127.0.0.1) driven by Playwright with Debian's chromium.

Runs `%load_ext tinytorch_progress`, `%tito status` and `%tito complete 01` (whose real tests pass and which unlocks
"1957: Perceptron") in a notebook, checks the widget panel and the unlock banner in the DOM, refreshes the panel in
place, saves the notebook and checks every panel output carries text/plain and text/html. Screenshots go to
test-output/ (gitignored; CI keeps them as artifacts).
"""
import json, os, re, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

from conftest import jupyterlab_server

import pytest

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian `chromium` is not on PATH (apt-get install chromium)")]
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
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
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
            expect(banner).to_contain_text("1957: Perceptron unlocked — run %tito milestone run 01")
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
    assert [src for src, _ in panels] == ["%tito status", "%tito complete 01", "%tito milestone progress"]
    status_data = panels[0][1]
    assert "01  Tensor" in status_data["text/plain"] and "tito-status" in status_data["text/html"]
    assert "1957: Perceptron unlocked" in panels[1][1]["text/html"] and "1957: Perceptron unlocked" in panels[1][1]["text/plain"]
    plot = [o for c in nb.cells if c.source == "%tito plot milestones" for o in c.outputs]
    assert plot and {"image/png", "text/plain"} <= set(plot[0]["data"])
