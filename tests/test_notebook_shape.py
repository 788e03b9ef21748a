"""The notebooks read as nbdev chapters (issue 17 "Notebooks, nbdev's way"), measured on nbs/*.ipynb:

- exported cells (`#| export`, `#| exports`, `#| exporti`) are small steps: median ≤ 15 lines per notebook, none over
  60 (every line of the cell source counts, the directive too);
- each module notebook opens with `# Title` and a one-line `> summary`, and the generated module's docstring is that
  summary, whole (nbdev keeps only the first line of a wrapped summary);
- every public definition of an exported cell (function or class whose name does not start with `_`) is followed, in
  the same section (up to the next `#`, `##` or `###` heading), by a code cell that is not exported and uses it — by
  name, or by an alias the same exported cell binds to it (`Reader = Annotated[..., Depends(reader)]`): an example;
- the notebooks of the panel and plot views, the magics and the report cards keep a saved panel or card (`text/html`) and a saved figure (`image/png`), so
  GitHub and nbviewer show what the views draw.
"""
import ast, json, re, statistics
from fnmatch import fnmatch
from pathlib import Path

import pytest

from conftest import ROOT

NBS = ROOT / "nbs"
PKG = ROOT / "tinytorch_progress"
MEDIAN_MAX, CELL_MAX = 15, 60
EXPORT = {"export", "exports", "exporti"}
PANEL_MODULES = ["views.status", "magics", "views.report_card", "report.grading"]  # must keep a rendered panel or card (text/html)
PLOT_MODULES = ["views.plot*", "plots"]                                                          # must keep an image/png


def notebooks() -> list:
    return sorted(NBS.rglob("*.ipynb"))


def cells(nb: Path) -> list:
    return json.loads(nb.read_text())["cells"]


def source(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def directives(cell) -> dict:
    "nbdev's `#| name args` lines at the top of a code cell (a `#|` line further down, or in a string, is not one)."
    out = {}
    if cell["cell_type"] != "code": return out
    for line in source(cell).splitlines():
        m = re.match(r"^#\s*\|\s*([\w-]+)\s*(.*?)\s*$", line)
        if not m:
            if line.strip() == "" or line.lstrip().startswith("#"): continue
            break
        out[m.group(1)] = m.group(2)
    return out


def module_of(nb: Path):
    "The module a notebook exports to (`server.db`), or None."
    for c in cells(nb):
        d = directives(c)
        if d.get("default_exp"): return d["default_exp"]
    return None


def exported_cells(nb: Path) -> list:
    "(cell index, number of lines) of each exported cell."
    return [(i, len(source(c).splitlines())) for i, c in enumerate(cells(nb)) if EXPORT & set(directives(c))]


MODULE_NBS = [nb for nb in notebooks() if module_of(nb)]
ids = lambda nbs: [nb.name for nb in nbs]


def test_there_are_module_notebooks():
    assert len(MODULE_NBS) >= 20


@pytest.mark.parametrize("nb", MODULE_NBS, ids=ids(MODULE_NBS))
def test_exported_cells_are_small(nb):
    sizes = exported_cells(nb)
    assert sizes, f"{nb.name} exports no cell"
    worst = sorted(sizes, key=lambda s: -s[1])
    over = [f"{nb.name} cell {i}: {n} lines" for i, n in worst if n > CELL_MAX]
    assert not over, f"exported cells over {CELL_MAX} lines:\n" + "\n".join(over)
    med = statistics.median(n for _, n in sizes)
    assert med <= MEDIAN_MAX, (f"{nb.name}: median exported cell {med} lines (≤ {MEDIAN_MAX}); largest: "
                               + ", ".join(f"cell {i}: {n} lines" for i, n in worst[:5]))


def test_exported_cells_overall():
    "The whole project's numbers, with the worst offenders named (one place to read them)."
    sizes = [(nb.name, i, n) for nb in MODULE_NBS for i, n in exported_cells(nb)]
    worst = sorted(sizes, key=lambda s: -s[2])
    report = "\n".join(f"  {name} cell {i}: {n} lines" for name, i, n in worst[:15])
    med = statistics.median(n for *_, n in sizes)
    assert med <= MEDIAN_MAX and worst[0][2] <= CELL_MAX, f"median {med} lines over {len(sizes)} exported cells; largest:\n{report}"


def public_definitions(cell) -> tuple[list, dict]:
    "The public functions and classes an exported cell defines, and the names it binds to each (aliases)."
    try: tree = ast.parse(re.sub(r"^\s*[%!].*$", "", source(cell), flags=re.M))
    except SyntaxError: return [], {}
    names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith("_")]
    aliases = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            for w in ast.walk(n.value):
                if isinstance(w, ast.Name) and w.id in names: aliases.setdefault(w.id, []).append(n.targets[0].id)
    return names, aliases


def without_example(cs: list) -> list:
    "The public definitions in notebook cells `cs` that no example cell of their section uses."
    missing = []
    for i, c in enumerate(cs):
        if not {"export", "exports"} & set(directives(c)): continue
        names, aliases = public_definitions(c)
        if not names: continue
        later = []
        for c2 in cs[i + 1:]:
            if c2["cell_type"] == "markdown":
                if re.match(r"^#{1,3} ", source(c2)): break
                continue
            if not EXPORT & set(directives(c2)): later.append(source(c2))
        text = "\n".join(later)
        missing += [n for n in names if not any(re.search(rf"\b{re.escape(a)}\b", text) for a in [n, *aliases.get(n, [])])]
    return missing


@pytest.mark.parametrize("nb", MODULE_NBS, ids=ids(MODULE_NBS))
def test_every_public_definition_has_an_example(nb):
    missing = without_example(cells(nb))
    assert not missing, f"{nb.name}: no example after " + ", ".join(missing)


def test_the_example_rule_sees_what_it_should():
    code = lambda s: {"cell_type": "code", "source": s}
    md = lambda s: {"cell_type": "markdown", "source": s}
    defs = code("#| export\ndef shown(x): return x\ndef hidden(): pass\ndef _private(): pass\nAlias = list[shown]\n")
    assert without_example([defs, code("shown(1)"), code("hidden")]) == []
    assert without_example([defs, code("Alias"), md("## Next section"), code("hidden()")]) == ["hidden"]
    assert without_example([defs, code("#| export\nhidden()"), md("Prose naming shown and hidden.")]) == ["shown", "hidden"]
    nb = NBS / "11_store.ipynb"
    assert sum(len(public_definitions(c)[0]) for c in cells(nb) if {"export", "exports"} & set(directives(c))) >= 15


def summary_lines(nb: Path):
    "(title, [lines of the `>` summary]) of the notebook's first cell."
    first = cells(nb)[0]
    assert first["cell_type"] == "markdown", f"{nb.name}: the first cell is not the title cell"
    text = source(first).lstrip("\n").splitlines()
    assert text and re.match(r"^# \S", text[0]), f"{nb.name}: the first cell does not start with `# Title`"
    rest = [l for l in text[1:]]
    while rest and not rest[0].strip(): rest.pop(0)
    lines = []
    for l in rest:  # the blockquote paragraph: `>` lines and any lazy continuation lines up to a blank line
        if not l.strip(): break
        lines.append(l)
    return text[0], lines


@pytest.mark.parametrize("nb", MODULE_NBS, ids=ids(MODULE_NBS))
def test_summary_is_one_line_and_the_whole_module_docstring(nb):
    title, lines = summary_lines(nb)
    assert lines and lines[0].startswith(">"), f"{nb.name}: no `> summary` line after the title"
    assert len(lines) == 1, f"{nb.name}: the summary wraps over {len(lines)} lines; nbdev keeps only the first:\n" + "\n".join(lines)
    summary = lines[0][1:].strip()
    mod = PKG.joinpath(*module_of(nb).split("."))
    path = mod / "__init__.py" if mod.is_dir() else mod.with_suffix(".py")
    assert path.is_file(), f"{nb.name}: its module {path.relative_to(ROOT)} is missing (run nbdev_export)"
    doc = ast.get_docstring(ast.parse(path.read_text()), clean=False)
    assert doc == summary, f"{path.relative_to(ROOT)} docstring {doc!r}\n != the summary of {nb.name} {summary!r}"


def saved(nb: Path, mime: str) -> int:
    "How many saved outputs of the notebook carry `mime`."
    return sum(mime in o.get("data", {}) for c in cells(nb) if c["cell_type"] == "code" for o in c.get("outputs", []))


def view_notebooks(patterns) -> list:
    return [nb for nb in MODULE_NBS if any(fnmatch(module_of(nb), p) for p in patterns)]


def test_there_are_panel_and_plot_notebooks():
    assert view_notebooks(PANEL_MODULES), f"no notebook exports a panel view ({PANEL_MODULES})"
    assert view_notebooks(PLOT_MODULES), f"no notebook exports the plots ({PLOT_MODULES})"


@pytest.mark.parametrize("nb", view_notebooks(PANEL_MODULES), ids=ids(view_notebooks(PANEL_MODULES)))
def test_panel_notebook_keeps_a_rendered_panel(nb):
    assert saved(nb, "text/html") >= 1, f"{nb.name} keeps no text/html output: run it and save the panel"
    assert saved(nb, "text/plain") >= 1


@pytest.mark.parametrize("nb", view_notebooks(PLOT_MODULES), ids=ids(view_notebooks(PLOT_MODULES)))
def test_plot_notebook_keeps_a_figure(nb):
    assert saved(nb, "image/png") >= 1, f"{nb.name} keeps no image/png output: run it and save a figure"


def test_views_notebooks_show_both():
    views = [nb for nb in MODULE_NBS if fnmatch(module_of(nb), "views*")]
    assert views, "no views notebooks yet (issue 17 layout)"
    assert sum(saved(nb, "image/png") for nb in views) >= 1 and sum(saved(nb, "text/html") for nb in views) >= 1
