"""Display views: mimebundles, HTML escaping, themes, lazy imports, and the panel in a real kernel."""
import json, os, subprocess, sys
from pathlib import Path

import pytest

from tinytorch_progress.views import palette, status as status_views
from tinytorch_progress.views.status import WIDGET_MIME, ChangeView, MilestonesView, StatusView
from tinytorch_progress.tracker import complete, complete_milestone, status

EVIL = "<script>alert(1)</script>"


def evil_workspace(root: Path) -> Path:
    "A workspace whose curriculum override puts markup in the course name, a tier, titles and a milestone name."
    (root / ".tito").mkdir(parents=True, exist_ok=True)
    cur = {"name": f"Course {EVIL}", "tiers": ["Basics", f"T{EVIL}"],
           "modules": [{"number": 1, "slug": "tensor", "title": f"Tensor {EVIL}", "tier": "Basics"},
                       {"number": 2, "slug": "act", "title": "Act <img src=x onerror=alert(2)>", "tier": f"T{EVIL}"}],
           "milestones": [{"id": "01", "name": f"1957: {EVIL}", "year": 1957, "requires": [1]}]}
    (root / ".tito" / "curriculum.json").write_text(json.dumps(cur))
    return root


@pytest.fixture
def widgets_on():
    status_views.WIDGETS = True
    yield
    status_views.WIDGETS = None


def test_bundle_without_kernel_has_html_and_text_only(tmp_path):
    complete(tmp_path, 1, skip_tests=True)
    b = StatusView(status(tmp_path))._repr_mimebundle_()
    assert sorted(b) == ["text/html", "text/plain"]
    # text/plain is the readable per-module table, even where `tito status` prints the summary only
    assert "01  Tensor" in b["text/plain"] and "1/20 (5%)" in b["text/plain"]
    assert "data-module='01' data-state='completed'" in b["text/html"]
    assert "<progress max='20' value='1'" in b["text/html"]
    # the terminal text is unchanged by the widget work
    assert StatusView(status(tmp_path)).text().splitlines()[1].startswith("Modules     [")


def test_bundle_with_widgets(tmp_path, widgets_on):
    complete(tmp_path, 1, skip_tests=True)
    st = status(tmp_path)
    for view in (StatusView(st), MilestonesView(st)):
        b = view._repr_mimebundle_()
        assert sorted(b) == [WIDGET_MIME, "text/html", "text/plain"], type(view)
        assert b[WIDGET_MIME]["model_id"] and b[WIDGET_MIME]["version_major"] == 2
        assert b["text/plain"].strip() and b["text/html"].startswith("<div")
    # a change is HTML the front end renders itself (its Next link opens in JupyterLab), never a widget
    b = ChangeView(complete(tmp_path, 2, skip_tests=True))._repr_mimebundle_()
    assert sorted(b) == ["text/html", "text/plain"] and b["text/html"].startswith("<div")
    # include/exclude are honoured
    assert list(StatusView(st)._repr_mimebundle_(include={"text/plain"})) == ["text/plain"]
    assert WIDGET_MIME not in StatusView(st)._repr_mimebundle_(exclude={WIDGET_MIME})


def test_panel_widgets_and_refresh(tmp_path, widgets_on):
    complete(tmp_path, 1, skip_tests=True)
    p = StatusView(status(tmp_path)).panel()
    assert "tito-panel" in p.widget._dom_classes
    assert (p.bar.value, p.bar.max) == (1, 20)
    assert "1/20 modules (5%)" in p.pct.value
    assert "data-milestone='01' data-state='unlocked'" in p.body.value and "needs modules 02" in p.body.value
    assert "<b>Next:</b>" in p.body.value and "%tito milestone run 01" in p.body.value
    complete(tmp_path, 2, skip_tests=True)          # changed elsewhere (e.g. the terminal)
    p.button.click()                                # the Refresh button re-reads in place
    assert p.bar.value == 2 and "refreshed" in p.note.value
    ChangeView(complete(tmp_path, 3, skip_tests=True))  # a change in this kernel refreshes live panels
    assert p.bar.value == 3 and "3/20 modules (15%)" in p.pct.value
    (tmp_path / ".tito" / "curriculum.json").write_text("{not json")
    p.refresh()                                      # errors show on the panel, never raise
    assert "cannot refresh" in p.note.value and p.bar.value == 3


def test_html_is_escaped(tmp_path, widgets_on):
    root = evil_workspace(tmp_path)
    c = complete(root, 1, skip_tests=True)
    st = status(root)
    view = StatusView(st)
    p = view.panel()
    htmls = [view.html(), MilestonesView(st).html(), ChangeView(c).html(), p.header.value, p.body.value, p.pct.value]
    for h in htmls:
        assert "<script" not in h.lower() and "<img" not in h.lower(), h
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in view.html()
    assert "Tensor &lt;script&gt;" in view.html() and "Act &lt;img src=x onerror=alert(2)&gt;" in view.html()
    assert "1957: &lt;script&gt;alert(1)&lt;/script&gt; unlocked" in ChangeView(c).html()
    assert f"Tensor {EVIL}"[:24] in view._repr_mimebundle_()["text/plain"]  # text stays text


def test_themes(tmp_path, widgets_on):
    from tinytorch_progress.store import Workspace
    from tinytorch_progress.config import update_config
    complete(tmp_path, 1, skip_tests=True)
    seen = {}
    for name, expect in (("standard", "#c2410c"), ("pride", "linear-gradient(90deg,#e40303"), ("retro", "#000000"),
                         ("<b>neon</b>", "#c2410c")):
        update_config(Workspace(tmp_path), logo_theme=name)
        st = status(tmp_path)
        assert st.theme == name
        h = StatusView(st).html()
        header = h[h.index("tito-header"):h.index("</div>", h.index("tito-header"))]
        assert expect in header, (name, header)
        assert "<b>neon" not in h
        p = StatusView(st).panel()
        assert p.bar.style.bar_color == palette.theme(name)[1]["accent"]
        seen[name] = h
    assert "tito-theme-retro" in seen["retro"] and "font-family:monospace" in seen["retro"]
    assert "tito-theme-standard" in seen["<b>neon</b>"]


def test_banners(tmp_path):
    for n in range(1, 7): complete(tmp_path, n, skip_tests=True)
    c = complete(tmp_path, 7, skip_tests=True)
    assert [m.name for m in c.unlocked] == ["1986: MLP Revival"]
    v = ChangeView(c)
    assert "★ 1986: MLP Revival unlocked — re-create it with `tito milestone run 03`" in v.text()
    assert "tito-banner tito-unlock" in v.html() and "<b>1986: MLP Revival unlocked</b> — re-create it with <code style='background:none;color:inherit'>%tito milestone run 03</code>" in v.html()
    m = ChangeView(complete_milestone(tmp_path, 3))
    assert "tito-banner tito-milestone-complete" in m.html() and "1986: MLP Revival achieved!" in m.html()
    for n in range(8, 20): complete(tmp_path, n, skip_tests=True)
    last = ChangeView(complete(tmp_path, 20, skip_tests=True))
    assert "tito-banner tito-course-complete" in last.html() and "Course complete" in last.text()
    again = ChangeView(complete(tmp_path, 20, skip_tests=True))  # nothing new: no banner
    assert "tito-banner" not in again.html()


def test_status_panel_function(tmp_path, monkeypatch):
    import tinytorch_progress
    complete(tmp_path, 1, skip_tests=True)
    monkeypatch.chdir(tmp_path); monkeypatch.delenv("TITO_ROOT", raising=False)
    v = tinytorch_progress.status_panel()
    assert isinstance(v, StatusView) and v.status.completed_count == 1
    assert tinytorch_progress.status_panel(tmp_path).status.root == str(tmp_path.resolve())


LAZY = """
import sys, tinytorch_progress.cli.main as cli
rc = cli.main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'matplotlib'))
print('HEAVY', heavy, 'RC', rc)
"""


@pytest.mark.parametrize("argv", [["status"], ["status", "--progress"], ["milestone", "progress"], ["plot", "milestones"],
                                  ["complete", "02", "--skip-tests"]])
def test_terminal_does_not_import_widgets_or_matplotlib(tmp_path, argv):
    complete(tmp_path, 1, skip_tests=True)
    env = {k: v for k, v in os.environ.items() if k != "TITO_ROOT"}
    p = subprocess.run([sys.executable, "-c", LAZY, "--root", str(tmp_path), *argv], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "HEAVY [] RC 0" in p.stdout, p.stdout


# --- a real kernel: what JupyterLab would receive -------------------------------------------------------------

@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    from jupyter_client.manager import start_new_kernel
    import importlib.util, queue, signal, time
    ws = tmp_path_factory.mktemp("kernel-ws")
    subprocess.run([sys.executable, "-m", "tinytorch_progress.cli.main", "init", str(ws)], check=True, capture_output=True)
    # A matplotlib that has never run builds its font cache on first import, silently (for long on a machine with
    # many fonts): build it before the kernel starts, so the replies' timeout measures our code only.
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=True, capture_output=True)
    log = open(ws.parent / "kernel.log", "w+")
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ws), env={**os.environ, "TITO_NO_SYNC": "1", "TITO_ROOT": str(ws)},
                              stdout=log, stderr=log)

    stacks = ws.parent / "kernel-stacks.txt"
    spec = importlib.util.spec_from_file_location("kernel_soak", Path(__file__).resolve().parents[1] / "scripts" / "kernel_soak.py")
    soak = importlib.util.module_from_spec(spec); spec.loader.exec_module(soak)  # its /proc reader and stack-dump cell

    def stuck_where():
        "Whether the kernel lives, its threads' stacks and states, the traceback an interrupt gets, and what it printed."
        alive, tb = km.is_alive(), ""
        if alive:
            pid = km.provisioner.process.pid
            state = soak.kernel_state(pid)
            os.kill(pid, signal.SIGUSR1); time.sleep(1)  # faulthandler writes every thread's stack, even from C
            tb = f"{state}\nstacks:\n{stacks.read_text()[:30000] if stacks.exists() else '(none written)'}\n"
            km.interrupt_kernel()
            try:
                while True:
                    m = kc.get_iopub_msg(timeout=10)
                    if m["msg_type"] == "error": tb += "\n".join(m["content"]["traceback"])[-4000:]; break
            except queue.Empty: tb += "(no traceback after an interrupt)"
        log.seek(0)
        return f"kernel alive: {alive}\n{tb}\nkernel output:\n{log.read()[-3000:]}"

    def run(code, timeout=120, **kw):
        msg_id = kc.execute(code, **kw)
        outs = []
        while True:
            try: m = kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no reply to {code!r} in {timeout} s; {stuck_where()}")
            if m["parent_header"].get("msg_id") != msg_id: continue
            if m["msg_type"] in ("execute_result", "display_data", "stream", "error"): outs.append(m)
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle": return outs
    run(soak.stack_dump_cell(stacks))
    run("%load_ext tinytorch_progress")
    yield run, ws
    kc.stop_channels(); km.shutdown_kernel(now=True); log.close()


def _data(outs):
    errs = [m["content"] for m in outs if m["msg_type"] == "error"]
    assert not errs, errs
    return [m["content"]["data"] for m in outs if m["msg_type"] in ("execute_result", "display_data")]


def test_kernel_status_and_complete(kernel):
    run, ws = kernel
    [d] = _data(run("%tito status"))
    assert {WIDGET_MIME, "text/html", "text/plain"} <= set(d)
    assert "tito-status" in d["text/html"] and "Tensor" in d["text/plain"]
    [d] = _data(run("%tito complete 01 --skip-tests"))
    assert set(d) == {"text/html", "text/plain"}  # rendered by the front end, so its Next link opens inside JupyterLab
    assert "1957: Perceptron unlocked" in d["text/html"] and "tito-banner tito-unlock" in d["text/html"]
    [d] = _data(run("%tito plot milestones"))
    assert d["image/png"] and "text/plain" in d
    out = run("import sys; print(sorted(m for m in ('ipywidgets', 'matplotlib') if m in sys.modules))")
    assert "['ipywidgets', 'matplotlib']" in out[0]["content"]["text"]


def test_batch_run_gets_html_not_a_widget(kernel):
    "nbconvert, papermill and nbclient execute with stdin closed: no widget view, so exported HTML shows the panel."
    run, ws = kernel
    [d] = _data(run("%tito status", allow_stdin=False))
    assert sorted(d) == ["text/html", "text/plain"] and "tito-status" in d["text/html"]
    [d] = _data(run("%tito status"))  # a person at the front end again
    assert WIDGET_MIME in d


def test_check_view_reads_in_light_and_dark_themes():
    "`%tito test`'s report: verdicts in the palette's colours on their own pale backgrounds (readable on any page)."
    from tinytorch_progress.module_tests import TestCheck, TestOutcome
    from tinytorch_progress.curriculum import Module
    from tinytorch_progress.views.checks import CheckView
    t = TestOutcome(False, "kernel", ["test_a", "test_b"], [("test_b", "AssertionError: <no>")],
                    checks=[TestCheck("test_a", True, cell=2, count=3), TestCheck("test_b", False, "AssertionError: <no>", 2, 4, 5, "use <+>")])
    html = CheckView(Module(1, "tensor", "Tensor", "Foundation"), t, "%tito", live=True).html()
    for color in (palette.OK, palette.BAD, palette.MUTED):
        if color in html: assert f"color:{color};background:{palette.TINT[color]}" in html
        assert palette.contrast(color, palette.TINT[color]) >= 4.5
    assert "AssertionError: &lt;no&gt;" in html and "hint: use &lt;+&gt;" in html and "cell 4 [5], line 2" in html
    assert "<code>%tito test 01</code>" in html and "tito test" not in html.replace("%tito test", "")
