"""Guards of the package's shape (issue 17), read from the code itself.

- No import cycles among the package's modules: every `import`/`from ... import` found by `ast`, absolute or relative,
  at module level or inside a function (a lazy import still ties two modules together).
- The layer rule: readers < core < views < front ends, with the server package beside the views: each module imports
  only its own layer or the layers above it; the analysis modules import no view, plot, command or server module.
- The `tito status` path's import set: no pydantic (files tito wrote are not validated again: `store.is_verified`),
  no ipywidgets, matplotlib or filelock, and nothing a write, HTML or a child process needs.

The package root `tinytorch_progress/__init__.py` is the hand-written façade (`%load_ext`, lazy `status_panel`): it is
not a layer, and `import tinytorch_progress` (used to find the package folder) is not an edge.
"""
import ast, json, os, subprocess, sys, textwrap
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path

import pytest

from conftest import ROOT

PKG = "tinytorch_progress"
PKG_DIR = ROOT / PKG

# Layers, top (may be imported by everyone) to bottom; a module may import its own layer and any layer listed before it.
LAYERS = {
    "readers": ["errors", "ids", "timeutil", "safe_read", "jsonio", "schemas", "notebooks", "locate", "repository", "curriculum"],
    "core": ["atomic", "store", "events", "config", "doctor", "runner", "child_process", "module_tests", "tracker", "report",
             "report.*", "failures", "kernel_runs", "package_export", "performance", "export", "outbox", "sync", "profile",
             "milestones"],
    "views": ["views", "views.*"],
    "server": ["server", "server.*"],
    "front ends": ["cli", "cli.*", "magics", "demo", "__main__"],
}
# What each layer may import besides itself. The server is a package of its own beside the views: it reads with the
# readers and core (schemas, ids, store) and renders its own pages; the front ends (`cli.server`, `demo`) start it.
MAY_IMPORT = {
    "readers": set(),
    "core": {"readers"},
    "views": {"readers", "core"},
    "server": {"readers", "core"},
    "front ends": {"readers", "core", "views", "server"},
}
# The one exception: the class site may take its colours from the one palette (a leaf of constants, see below).
ALLOWED = [("server*", "views.palette")]
ANALYSIS = ["schemas", "curriculum", "store", "tracker", "report.metrics", "report.concepts", "report.grading", "report.cards",
            "performance", "export", "milestones"]
FORBIDDEN_FOR_ANALYSIS = ["views", "views.*", "display", "plots", "palette", "cli", "cli.*", "cmd_*", "magics", "server", "server.*"]


def module_name(path: Path) -> str:
    "`tinytorch_progress/server/app.py` -> `server.app`; a package's `__init__.py` is the package."
    parts = list(path.relative_to(PKG_DIR).with_suffix("").parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    return ".".join(parts)


@lru_cache(maxsize=1)
def package_modules() -> dict:
    "Every module of the package (name relative to the package -> path), without the root façade and `_modidx`."
    out = {module_name(p): p for p in sorted(PKG_DIR.rglob("*.py")) if "__pycache__" not in p.parts}
    out.pop("", None); out.pop("_modidx", None)
    return out


def imports_of(name: str, source: str, known, is_pkg: bool = False) -> list:
    "(imported module, line) of each package module that module `name` (source text `source`) imports anywhere."
    here = name.split(".") if is_pkg else name.split(".")[:-1]  # the package a relative import starts from
    out = []

    def add(target, line):
        "Resolve `target` (relative to the package root) to a known module: the longest known prefix."
        parts = target.split(".") if target else []
        while parts and ".".join(parts) not in known: parts.pop()
        if parts and ".".join(parts) != name: out.append((".".join(parts), line))

    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(PKG + "."): add(a.name[len(PKG) + 1:], node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                if node.level - 1 > len(here): continue
                mod = ".".join(base + (node.module.split(".") if node.module else []))
            elif node.module == PKG: mod = ""
            elif node.module and node.module.startswith(PKG + "."): mod = node.module[len(PKG) + 1:]
            else: continue
            for a in node.names:  # `from .views import palette` imports the submodule when there is one
                sub = f"{mod}.{a.name}" if mod else a.name
                add(sub if sub in known else mod, node.lineno)
    return out


@lru_cache(maxsize=1)
def import_graph() -> dict:
    "module -> {imported module: first line}."
    mods = package_modules()
    graph = {}
    for name, path in mods.items():
        edges = {}
        for target, line in imports_of(name, path.read_text(), mods, path.name == "__init__.py"): edges.setdefault(target, line)
        graph[name] = edges
    return graph


def layer_of(name: str):
    for layer, patterns in LAYERS.items():
        if any(fnmatch(name, p) for p in patterns): return layer
    return None


def where(name: str, line: int) -> str:
    p = package_modules()[name]
    return f"{p.relative_to(ROOT)}:{line}"


def test_the_import_reader_sees_relative_lazy_and_subpackage_imports():
    src = textwrap.dedent("""
        import json
        from .palette import GREEN
        from . import status
        import tinytorch_progress.tracker
        def f():
            from tinytorch_progress.views import palette
            from ..schemas import load
            from tinytorch_progress import store
        """)
    known = {"ids", "store", "tracker", "views", "views.palette", "views.status", "views.report", "schemas"}
    edges = sorted(imports_of("views.report", src, known), key=lambda e: e[1])
    assert edges == [("views.palette", 3), ("views.status", 4), ("tracker", 5), ("views.palette", 7), ("schemas", 8), ("store", 9)], edges
    edges = imports_of("views", "from .status import x\nfrom .. import ids\nfrom . import nothing_known", known, is_pkg=True)
    assert edges == [("views.status", 1), ("ids", 2)], edges


def test_every_module_is_in_a_layer():
    missing = [m for m in package_modules() if layer_of(m) is None]
    assert not missing, f"modules in no layer of tests/test_architecture.py LAYERS (move them into the layout of issue 17): {missing}"


def test_no_import_cycles():
    graph = import_graph()
    cycles, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"; stack.append(m)
        for t in sorted(graph.get(m, {})):
            if state.get(t) == "open":
                cyc = stack[stack.index(t):] + [t]
                cycles.append(" -> ".join(f"{a} ({where(a, graph[a][b])})" for a, b in zip(cyc, cyc[1:])) + f" -> {t}")
            elif t not in state: visit(t)
        stack.pop(); state[m] = "done"

    for m in sorted(graph):
        if m not in state: visit(m)
    assert not cycles, "import cycles (a lazy import counts too):\n" + "\n".join(cycles)


def test_layer_rule():
    graph, bad = import_graph(), []
    for m, edges in sorted(graph.items()):
        lm = layer_of(m)
        for t, line in sorted(edges.items()):
            lt = layer_of(t)
            if lm is None or lt is None or lt == lm: continue
            if lt not in MAY_IMPORT[lm] and not any(fnmatch(m, a) and fnmatch(t, b) for a, b in ALLOWED):
                bad.append(f"{m} ({lm}) imports {t} ({lt}) at {where(m, line)}")
    assert not bad, "imports against the layer rule (readers < core < views, server < front ends):\n" + "\n".join(bad)


def test_the_palette_is_a_leaf():
    "Everything may take its colours from the palette, so the palette imports nothing of the package."
    graph = import_graph()
    if "views.palette" not in graph: pytest.skip("no views/palette.py yet")
    assert not graph["views.palette"], f"views.palette imports {sorted(graph['views.palette'])}"


@pytest.mark.parametrize("module", ANALYSIS)
def test_analysis_modules_import_no_view_plot_command_or_server(module):
    graph = import_graph()
    assert module in graph, f"{PKG}/{module}.py is missing"
    bad = [f"{module} imports {t} at {where(module, line)}" for t, line in sorted(graph[module].items())
           if any(fnmatch(t, p) for p in FORBIDDEN_FOR_ANALYSIS)]
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- the status path's import set
HEAVY = ("pydantic", "ipywidgets", "matplotlib", "filelock")
# Standard-library modules the terminal status never needs: each is imported where it is used (HTML, a child, a write).
STATUS_NEVER = ("html", "subprocess", "tempfile")

PROBE = """
import io, json, sys
import argparse, datetime, gettext, locale, pathlib, re  # what the status path needs; on some Pythons they import contextlib
before = set(sys.modules)  # so only what our code adds counts (and not an editable install's finder either)
from tinytorch_progress.cli import main as cli
out, sys.stdout = io.StringIO(), io.StringIO()
rc = cli.main(sys.argv[1:])
out, sys.stdout = sys.stdout, sys.__stdout__
print(json.dumps({"rc": rc, "out": out.getvalue(), "heavy": [m for m in %r if m in sys.modules],
                  "never": [m for m in %r if m in sys.modules and m not in before]}))
""" % (HEAVY, STATUS_NEVER)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    "A workspace with all three progress files and unlocked milestones, written by the real tracker."
    from tinytorch_progress import tracker
    from tinytorch_progress.doctor import init_workspace
    ws = tmp_path_factory.mktemp("status-path")
    init_workspace(ws)
    for m in ("01", "02"): tracker.complete(ws, m, skip_tests=True)
    tracker.start(ws, "03")
    for f in ("progress.json", ".tito/progress.json", ".tito/milestones.json"): assert (ws / f).is_file(), f
    return ws


def probe(ws, *args, bare: bool = False) -> dict:
    "Run `tito ARGS` in a fresh interpreter; `bare`: without `site` (as from a wheel: no editable-install finder, no packages)."
    env = {"PATH": os.environ.get("PATH", ""), "NO_COLOR": "1", "HOME": str(ws)} | ({"PYTHONPATH": str(ROOT)} if bare else {})
    r = subprocess.run([sys.executable, *(["-S"] if bare else []), "-c", PROBE, "--root", str(ws), *args], cwd=ws,
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.splitlines()[-1])
    assert res["rc"] == 0 and res["out"].strip(), res
    return res


@pytest.mark.parametrize("args", [("status",), ("status", "--progress")])
def test_status_path_imports_nothing_heavy(workspace, args):
    res = probe(workspace, *args, bare=True)
    assert res["heavy"] == [], f"`tito {' '.join(args)}` imported {res['heavy']}"
    assert res["never"] == [], f"`tito {' '.join(args)}` imported {res['never']}, which it never uses"


def test_status_json_imports_no_widgets_or_plots(workspace):
    "`--json` checks its output against the `StatusReport` model, so pydantic is allowed there; display code is not."
    res = probe(workspace, "status", "--json")
    assert json.loads(res["out"])
    assert not {"ipywidgets", "matplotlib"} & set(res["heavy"]), res["heavy"]
