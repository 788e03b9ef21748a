"""Report cards on realistic TinyTorch-style module notebooks, with every metric computed by hand below."""
import base64, json, os, subprocess, sys
from datetime import datetime

import nbformat
import pytest

from tinytorch_progress.errors import TitoError
from tinytorch_progress.report.cards import card_filename, write_card
from tinytorch_progress.report.grading import analyze, report_card_for
from tinytorch_progress.views.report_card import ReportCardView, card_html
from tinytorch_progress.schemas import load

NOW = datetime(2025, 7, 12, 22, 48, 40)

# The module: (cell type, source, nbgrader metadata). Cell numbers (1-based over ALL cells) are in the comments.
ACTIVATIONS = [
    # 1 markdown: 2 non-blank lines, complexity 1, "what is" -> concept introduction;
    #   upstream concepts: heading, **Activations**, "02: A" -> 3 (not > 3)
    ("markdown", "# Module 02: Activations - ReLU and Sigmoid\n\nWelcome to **Activations**! What is an activation function?", None),
    # 2 code: 3 lines, magic commented out before parsing, complexity 1, setup
    ("code", "#| default_exp core.activations\n%matplotlib inline\nimport numpy as np", None),
    # 3 markdown: $ x6 + \ x1 = 7 math marks -> +1; tensor, gradient, backpropagation -> +1; complexity 3; "step"
    ("markdown", "## Step 1: Implementing ReLU\n\nReLU is defined as $f(x) = \\max(0, x)$. For the tensor gradient in "
                 "backpropagation, the derivative is $f'(x) = 1$ if $x > 0$.", None),
    # 4 code, nbgrader solution: 14 lines, class + 2 methods = 3 defs -> +1, np. x3 -> +1: complexity 3; TODO and hints
    ("code", '#| export\nclass ReLU:\n    """Rectified linear unit.\n\n    TODO: Return the input with negatives replaced by zero.\n\n'
             '    APPROACH:\n    1. Use np.maximum\n\n    HINT: np.maximum broadcasts\n    """\n    def forward(self, x):\n'
             '        ### BEGIN SOLUTION\n        return np.maximum(0, x)\n        ### END SOLUTION\n\n'
             '    def __call__(self, x):\n        return self.forward(x)',
     {"grade": False, "grade_id": "relu", "locked": False, "schema_version": 3, "solution": True, "task": False}),
    # 5 code, graded test, locked, 1 point: 6 lines, complexity 1, verification
    ("code", 'def test_unit_relu():\n    """Test ReLU on a small vector."""\n    x = np.array([-1.0, 0.0, 2.0])\n'
             '    assert np.allclose(ReLU()(x), [0.0, 0.0, 2.0])\n    print("✅ ReLU works")\n\ntest_unit_relu()',
     {"grade": True, "grade_id": "test_relu", "locked": True, "points": 1, "schema_version": 3, "solution": False, "task": False}),
    # 6 markdown: $ x6 + \ x6 + "equation" x2 = 14 math marks (> 10: math-heavy) -> +2: complexity 3
    ("markdown", "## Step 2: Sigmoid\n\nThe sigmoid equation: $\\sigma(x) = \\frac{1}{1 + e^{-x}}$ and its derivative "
                 "$\\sigma'(x) = \\sigma(x)(1 - \\sigma(x))$.\nEach equation matters: $\\sigma(0) = 0.5$.", None),
    # 7 code, nbgrader solution without hints: 31 lines, 37 physical lines -> +1; 1 class + 7 functions -> +4;
    #   for + if + elif = 3 -> +1: complexity 5. Upstream concepts: Sigmoid + 7 functions -> 5 (capped).
    ("code", "\n".join([
        "#| export", "class Sigmoid:", '    "Logistic activation."', "    def forward(self, x):",
        "        # TODO: implement the logistic function", "        raise NotImplementedError", "",
        "    def backward(self, grad):", "        # TODO: use the saved output", "        raise NotImplementedError", "",
        "def sigmoid(x):", "    return 1 / (1 + np.exp(-x))", "",
        "def softmax(x, axis=-1):", "    shifted = x - np.max(x, axis=axis, keepdims=True)", "    e = np.exp(shifted)",
        "    return e / np.sum(e, axis=axis, keepdims=True)", "",
        "def tanh(x):", "    out = []", "    for row in x:", "        if row.ndim == 0:", "            out.append(np.tanh(row))",
        "        elif row.ndim == 1:", "            out.append(np.array([np.tanh(v) for v in row]))", "        else:",
        "            out.append(np.tanh(row))", "    return np.stack(out) if out else np.array([])", "",
        "def gelu(x):", "    c = np.sqrt(2 / np.pi)", "    return 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3)))", "",
        "def leaky_relu(x, slope=0.01):", '    "Small slope for negatives."', "    return np.where(x > 0, x, slope * x)"]),
     {"grade": False, "grade_id": "sigmoid", "locked": False, "schema_version": 3, "solution": True, "task": False}),
    # 8 code, graded test, NOT locked, no points: 7 lines, 2 defs -> +1: complexity 2
    ("code", "def test_unit_sigmoid():\n    assert abs(sigmoid(0) - 0.5) < 1e-9\n\ndef test_unit_softmax():\n"
             "    p = softmax(np.array([1.0, 2.0]))\n    assert np.isclose(p.sum(), 1.0)\n\ntest_unit_sigmoid()\ntest_unit_softmax()",
     {"grade": True, "grade_id": "test_sigmoid", "locked": False, "schema_version": 3, "solution": False, "task": False}),
    # 9 raw and 10 empty code: numbered, not analysed
    ("raw", "instructor notes: not for students", None),
    ("code", "", None),
    # 11 markdown: "summary" -> reinforcement, complexity 1, 2 lines
    ("markdown", "## 🎯 Summary\n\nYou built ReLU and Sigmoid. Review the **key ideas** before the next module.", None),
    # 12 code: demonstration, complexity 1, 2 lines
    ("code", "x = np.linspace(-3, 3, 7)\nprint(ReLU()(x), sigmoid(x))", None),
    # 13 code that does not parse: upstream's substring fallback counts "def " and the "for " of "for students": complexity 3
    ("code", "# The next line is intentionally incomplete for students to fix\ndef broken(x:\n    return x", None),
]

EXPECTED = {
    "module_name": "02_activations",
    "module_path": "modules/02_activations",
    "analysis_date": "2025-07-12T22:48:40",
    "total_cells": 11,
    "avg_cell_length": 6.82,                                    # (2+3+2+14+6+3+31+7+2+2+3) / 11 = 75 / 11
    "scaffolding_quality": 4,                                   # 3 + (1/2 - 0.5)*2 + 0.5 + 1 = 4.5 -> 4
    "complexity_distribution": {"1": 5, "2": 1, "3": 4, "4": 0, "5": 1},
    "learning_progression_quality": 5,                          # 3 + 1 (cells 3,4,5: intro, implementation, test) + 1 (smooth)
    "concepts_covered": ["Activations", "ReLU", "Sigmoid", "softmax", "tanh", "gelu", "leaky_relu"],
    "todo_count": 2,
    "hint_count": 1,
    "test_count": 4,                                            # 3 test_unit_* functions + test_activations.py
    "critical_issues": [],
    "overwhelm_points": [
        "Cell 6: Math-heavy without scaffolding",
        "Cell 7: Long cell (31 lines)",
        "Cell 7: High complexity without guidance",
        "Cell 7: Too many concepts (5)",
        "Cell 7: Multiple functions in one cell (7)",
        "Cell 7: Complex implementation without error handling guidance",
    ],
    "recommendations": [
        "Add hints to 1 implementation cell",
        "Split 1 long cell into smaller, focused cells",
        "Add hints to 1 nbgrader solution cell without guidance (cell 7)",
        "Lock 1 graded test cell so students cannot change the tests (cell 8)",
        "Give points to 1 graded cell (cell 8)",
    ],
    # Scaffolding 4 -> B; Complexity 5 - 4*1/11 = 4.64 -> A; Cell_Length (6.82 <= 20) 5 -> A; mean 4.55 -> A
    "overall_grade": "A",
    "category_grades": {"Scaffolding": "B", "Complexity": "A", "Cell_Length": "A"},
    "nbgrader": {"solution_cells": [4, 7], "graded_cells": [5, 8], "locked_cells": [5], "points": 1},
}

HEADER = ["# ---", "# jupyter:", "#   jupytext:", "#     text_representation:", "#       extension: .py",
          "#       format_name: percent", "#       format_version: '1.3'", "#   kernelspec:", "#     display_name: Python 3",
          "#     language: python", "#     name: python3", "# ---", ""]


def to_percent(cells) -> str:
    "The jupytext percent form, as TinyTorch writes its modules: nbgrader markers, magics commented, '\"\"\"' markdown."
    out = list(HEADER)
    for i, (kind, src, nbg) in enumerate(cells):
        marker = "# %%" + {"markdown": " [markdown]", "raw": " [raw]"}.get(kind, "")
        if nbg: marker += " nbgrader=" + json.dumps(nbg)
        out.append(marker)
        if kind == "code": out += [("# " + l if l.startswith("%") else l) for l in src.split("\n")] if src else []
        elif kind == "markdown" and i == 0: out += ['"""', *src.split("\n"), '"""']
        else: out += [("# " + l) if l else "#" for l in src.split("\n")]
        out.append("")
    return "\n".join(out)


def to_ipynb(cells) -> str:
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell, "raw": nbformat.v4.new_raw_cell}
    nb = nbformat.v4.new_notebook(cells=[make[k](src, metadata={"nbgrader": g} if g else {}) for k, src, g in cells])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nbformat.writes(nb)


@pytest.fixture
def workspace(tmp_path):
    "A course workspace with module 02 as .py and .ipynb, and module 01 as a small .py."
    (tmp_path / ".tito").mkdir()
    m = tmp_path / "modules" / "02_activations"
    m.mkdir(parents=True)
    (m / "02_activations.py").write_text(to_percent(ACTIVATIONS))
    (m / "02_activations.ipynb").write_text(to_ipynb(ACTIVATIONS))
    (m / "test_activations.py").write_text("def test_relu():\n    pass\n")
    t = tmp_path / "modules" / "01_tensor"
    t.mkdir(parents=True)
    (t / "01_tensor.py").write_text(to_percent([
        ("markdown", "# Tensor\n\nWhat is a tensor?", None),
        ("code", "#| export\nclass Tensor:\n    def __init__(self, data):\n        self.data = data",
         {"grade": False, "grade_id": "tensor", "locked": False, "solution": True}),
        ("code", "def test_unit_tensor():\n    assert Tensor([1]).data == [1]\ntest_unit_tensor()",
         {"grade": True, "grade_id": "t", "locked": True, "points": 2})]))
    return tmp_path


def strip(card: dict) -> dict:
    return {k: v for k, v in card.items() if k not in ("module_path", "analysis_date", "total_lines")}


def test_py_module_card_matches_hand_computed_values(workspace):
    py = workspace / "modules" / "02_activations" / "02_activations.py"
    text = py.read_text()
    assert '# %% nbgrader={"grade": false, "grade_id": "relu"' in text and "### BEGIN SOLUTION" in text
    card = report_card_for(py, workspace, NOW).to_json()
    assert card == {**EXPECTED, "total_lines": len(text.splitlines())}
    assert card["total_lines"] == 133                                   # 13 header lines + 121 for the 13 cells - the final newline


def test_ipynb_and_py_give_the_same_card(workspace):
    m = workspace / "modules" / "02_activations"
    from_folder = report_card_for(m, workspace, NOW).to_json()          # the folder resolves to 02_activations.ipynb
    assert from_folder == {**EXPECTED, "total_lines": 93}               # sum of the cells' source lines: 3+3+3+18+7+4+37+9+1+0+3+2+3
    assert strip(from_folder) == strip(report_card_for(m / "02_activations.py", workspace, NOW).to_json())
    # and the .ipynb that jupytext itself makes from the .py
    import jupytext
    (workspace / "converted" / "02_activations").mkdir(parents=True)
    converted = workspace / "converted" / "02_activations" / "02_activations.ipynb"
    jupytext.write(jupytext.read(m / "02_activations.py"), converted)
    assert strip(report_card_for(converted, workspace, NOW).to_json()) == strip(EXPECTED) | {"test_count": 3}   # no test file there


def test_card_is_deterministic_across_processes(workspace):
    code = ("import json, sys; from tinytorch_progress.report.grading import report_card_for; "
            "print(json.dumps(report_card_for(sys.argv[1], sys.argv[2]).to_json()['concepts_covered']))")
    outs = {subprocess.run([sys.executable, "-c", code, str(workspace / "modules" / "02_activations"), str(workspace)],
                           env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True).stdout
            for seed in ("1", "2", "3")}
    assert len(outs) == 1 and json.loads(outs.pop()) == EXPECTED["concepts_covered"]


def test_concepts_are_never_junk(tmp_path):
    nb = tmp_path / "junk.py"
    nb.write_text(to_percent([
        ("markdown", "# 2\n\n## x\n\n### None\n\n**x** and **2**: Value", None),
        ("code", "#| export\ny = x ** 2 + z ** 3\ndef f(x): return x\nclass A: pass\ndef _private(): pass", None),
        ("markdown", "## Deep Dive: Broadcasting & Strides\n```python\n# not a heading\n```", None)]))
    assert report_card_for(nb, tmp_path).concepts_covered == ["Broadcasting", "Strides"]


def test_cliffs_long_modules_and_locked_solutions_are_critical(tmp_path):
    dense = "\n".join(["#| export", "class Net:"] + [f"    def f{i}(self, x):\n        return [v for v in x if v]" for i in range(4)])
    nb = tmp_path / "cliff.py"
    nb.write_text(to_percent([
        ("markdown", "## Intro\n\nplain words", None),
        ("code", dense, {"grade": False, "grade_id": "net", "locked": True, "solution": True}),
        ("code", "x = 1", None)]))
    card = report_card_for(nb, tmp_path).to_json()
    # cell 2: 5 defs -> +2, 4 listcomps -> +2 (their `if`s are not `if` statements): complexity 5; jump 1 -> 5 is a cliff (>= 4: -2)
    assert card["complexity_distribution"] == {"1": 2, "2": 0, "3": 0, "4": 0, "5": 1}
    assert card["critical_issues"] == ["Implementation cells lack guidance (100.0% without hints)",
                                       "Sudden complexity jumps will overwhelm students",
                                       "Cell 2: nbgrader solution cell is locked - students cannot write their answer"]
    # 3 + (0 - 0.5)*2 - 2 (jump 4) + 0 (3 factors vs 3 cells) = 0 -> 1; progression 3 - 2 = 1
    assert (card["scaffolding_quality"], card["learning_progression_quality"]) == (1, 1)
    assert card["overwhelm_points"] == ["Cell 2: High complexity without guidance", "Cell 2: Too many concepts (5)",
                                        "Cell 2: Multiple functions in one cell (4)"]
    assert card["recommendations"][:3] == ["Add implementation ladders: break complex functions into 3 progressive steps",
                                           "Add concept bridges: connect new ideas to familiar concepts",
                                           "Include confidence builders: early wins to build momentum"]
    # Scaffolding 1 (F), Complexity 5 - 4/3 = 3.67 (B), Cell_Length 5 (A): mean 3.22 -> C
    assert (card["overall_grade"], card["category_grades"]) == ("C", {"Scaffolding": "F", "Complexity": "B", "Cell_Length": "A"})
    big = tmp_path / "big.py"
    big.write_text(to_percent([("code", "\n".join(f"x{i} = {i}" for i in range(1001)), None)]))
    # a .py counts the file's lines: 13 header lines + the marker + 1001 code lines
    assert report_card_for(big, tmp_path).critical_issues[0] == "Module too long (1015 lines) - students will be overwhelmed"


def test_bad_notebooks_are_one_line_errors(tmp_path):
    (tmp_path / "bad.ipynb").write_text('{"nbformat": 4,\n "cells": [\n  {"cell_type": "code", "source": ]}')
    with pytest.raises(TitoError, match=r"bad\.ipynb: line 3 column \d+: invalid JSON"): analyze(tmp_path / "bad.ipynb")
    (tmp_path / "list.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": 3}]}')
    with pytest.raises(TitoError, match=r"list\.ipynb: cells\[0\]: source is not text"): analyze(tmp_path / "list.ipynb")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(TitoError, match="empty_folder: no module notebook"): analyze(tmp_path / "empty_folder")


def test_write_card_and_views(workspace, tmp_path):
    a = analyze(workspace / "modules" / "02_activations", workspace, NOW)
    p = write_card(a.card, tmp_path / "out")
    assert p.name == card_filename(a.card) == "02_activations_report_card_20250712_224840.json"
    assert load(p).to_json() == a.card.to_json()
    html = card_html(a.card, a.labels)
    assert '<b>Cell 7</b> (<code style="background:none;color:inherit">class Sigmoid:</code>): Long cell (31 lines)' in html
    assert "12 Jul 2025, 22:48" in html and "2025-07-12T" not in html                 # a date the way a person writes it
    assert html.count("tito-complexity") == 1 and "data:image" not in html   # the chart is CSS bars: no image library
    v = ReportCardView([a, analyze(workspace / "modules" / "01_tensor", workspace, NOW)])
    bundle = v._repr_mimebundle_()
    assert bundle["text/plain"].splitlines()[1].split() == ["02_activations", "11", "93", "6.82", "B", "A", "A", "A"]
    assert bundle["text/html"].count("tito-grades") == 1 and bundle["text/html"].count("tito-complexity") == 2
    from tinytorch_progress.views.plots import report_figure
    assert len(report_figure(v.cards).axes[0].patches) == 8


def test_cli_all_writes_cards_and_prints_the_table(workspace, tito):
    r = tito("--root", workspace, "report", "--all")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""                                   # no progress bar: stderr is not a terminal
    lines = r.stdout.splitlines()
    assert [l.split()[0] for l in lines[1:3]] == ["01_tensor", "02_activations"]
    assert lines[2].split() == ["02_activations", "11", "93", "6.82", "B", "A", "A", "A"]
    files = sorted((workspace / "instructor" / "reports").glob("*.json"))
    assert [f.name.split("_report_card_")[0] for f in files] == ["01_tensor", "02_activations"]
    cards = [load(f).to_json() for f in files]
    assert strip(cards[1]) == strip(EXPECTED)
    assert cards[0]["analysis_date"] == cards[1]["analysis_date"]            # one timestamp per run


def test_cli_json_keeps_input_order_and_out_dir(workspace, tito, tmp_path):
    m = workspace / "modules"
    r = tito("--root", workspace, "report", m / "02_activations" / "02_activations.py", m / "01_tensor", "--json", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    cards = json.loads(r.stdout)
    assert [c["module_name"] for c in cards] == ["02_activations", "01_tensor"]
    assert strip(cards[0]) == strip(EXPECTED)
    assert len(list((tmp_path / "o").glob("*_report_card_*.json"))) == 2
    assert not (workspace / "instructor").exists()


def test_cli_errors(workspace, tito):
    (workspace / "modules" / "03_layers").mkdir()
    (workspace / "modules" / "03_layers" / "03_layers.ipynb").write_text('{"nbformat": 4, "cells": [\n}')
    r = tito("--root", workspace, "report", "--all")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("tito: error: ") and "03_layers.ipynb: line 2 column 1: invalid JSON" in r.stderr
    assert not (workspace / "instructor").exists()                           # nothing half-written
    assert tito("--root", workspace, "report", "x", "--all").returncode == 2
    r = tito("report", "--all", cwd=workspace.parent, env={"TITO_ROOT": ""})
    assert r.returncode == 1 and "no course workspace" in r.stderr


def test_cli_without_path_cards_the_module_folder_you_are_in(workspace, tito):
    r = tito("report", "--no-save", "--json", cwd=workspace / "modules" / "01_tensor")
    assert r.returncode == 0, r.stderr
    (card,) = json.loads(r.stdout)
    assert (card["module_name"], card["module_path"], card["test_count"], card["nbgrader"]["points"]) == ("01_tensor", "modules/01_tensor", 1, 2)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_only_on_a_terminal_and_never_with_json(workspace):
    def run(*extra):
        master, slave = os.openpty()
        try:
            r = subprocess.run([sys.executable, "-m", "tinytorch_progress.cli.main", "--root", str(workspace), "report", "--all", "--no-save", *extra],
                               stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120)
            os.close(slave); slave = None
            chunks = []
            while True:
                try: b = os.read(master, 4096)
                except OSError: break
                if not b: break
                chunks.append(b)
            return r, b"".join(chunks).decode()
        finally:
            if slave is not None: os.close(slave)
            os.close(master)
    r, err = run()
    assert r.returncode == 0 and "carding [" in err and "2/2" in err
    r, err = run("--json")
    assert r.returncode == 0 and err == "" and len(json.loads(r.stdout)) == 2
