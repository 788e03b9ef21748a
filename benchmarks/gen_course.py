"""A deterministic TinyTorch-size course: 20 module notebooks of 29–47 cells and 1,100–1,950 lines, as `.ipynb` or percent `.py`.

The modules are built the way the real course's are: a title cell, an imports cell with `#| default_exp`, then steps of
a markdown explanation (headings, bold terms, math), an exported nbgrader solution cell with a long docstring (TODO,
APPROACH, EXAMPLE, HINTS) and a locked, graded unit-test cell; checkpoints, a systems-analysis section and a summary.
The same seed gives byte-identical files, so benchmarks and the golden-card test see the same course every time.

Run: `python benchmarks/gen_course.py DIR [--format ipynb|py] [--modules N]` (a workspace: DIR/.tito, DIR/modules/...).
"""
import argparse, json, random
from pathlib import Path

MODULES = ["tensor", "activations", "layers", "losses", "autograd", "optimizers", "training", "dataloader", "spatial",
           "tokenization", "embeddings", "attention", "transformers", "profiling", "quantization", "compression",
           "memoization", "acceleration", "benchmarking", "capstone"]
SEED = 2026
PERCENT_HEADER = """# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.17.1
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---
"""
WORDS = ("shape broadcasting memory gradient tensor batch kernel stride layout cache throughput latency precision "
         "numerical stability vectorised loop allocation copy view contiguous parameter update schedule").split()


def _prose(rng: random.Random, sentences: int) -> list:
    out = []
    for _ in range(sentences):
        ws = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        out.append(" ".join(ws).capitalize() + ".")
    return [" ".join(out[i:i + 2]) for i in range(0, len(out), 2)]


def _md_step(rng, k: int, Cls: str) -> str:
    lines = [f"## Step {k}: Implementing {Cls}Op{k}", "", f"What is **{Cls}Op{k}**? It maps an input tensor to an output tensor.", ""]
    lines += _prose(rng, rng.randint(6, 14))
    lines += ["", "$$", f"y_{k} = \\sum_i w_i x_i + b_{k}", "$$", "", "### Why it matters", ""]
    lines += _prose(rng, rng.randint(4, 8))
    if rng.random() < 0.5: lines += ["", "```python", f"op = {Cls}Op{k}()", "y = op(x)", "```"]
    return "\n".join(lines)


def _solution(rng, k: int, Cls: str, extra: int = 0) -> str:
    doc = [f"    {line}" for line in _prose(rng, rng.randint(4, 8))]
    body = [f"        h{i} = x * {i + 1}.0 + self.w.sum()" for i in range(rng.randint(6, 16) + extra)]
    lines = ["#| export", f"class {Cls}Op{k}:", f'    """{Cls} operation {k}.', ""] + doc + [
        "", "    TODO: implement the forward pass.", "", "    APPROACH:", "    1. Check the input shape",
        "    2. Apply the weights", "    3. Return a new tensor", "", "    EXAMPLE:", f"    >>> {Cls}Op{k}()(np.ones(3))",
        "", "    HINTS:", "    - use the @ operator", "    - keep the dtype", '    """',
        "    def __init__(self, size=3):", "        self.w = np.ones(size)", "",
        "    def forward(self, x):", "        ### BEGIN SOLUTION", "        if x.ndim != 1:",
        "            raise ValueError('expected a vector')"] + body + [
        "        out = x @ self.w", "        for i in range(len(x)):", "            out = out + 0.0 * x[i]",
        "        return np.asarray(out)", "        ### END SOLUTION", "", "    def __call__(self, x):",
        "        return self.forward(x)"]
    return "\n".join(lines)


def _test(rng, k: int, Cls: str) -> str:
    checks = [f"    assert op(np.ones(3) * {i}) == {3 * i}.0" for i in range(rng.randint(3, 9))]
    return "\n".join([f"def test_unit_op{k}():", f'    """Test {Cls}Op{k} on small vectors."""', f"    op = {Cls}Op{k}()"]
                     + checks + ["    print('✅ op works')", "", f"test_unit_op{k}()"])


def module_cells(n: int, slug: str, seed: int = SEED) -> list:
    "The (kind, source, nbgrader metadata or None) cells of module `n`: 29–47 cells, 1,100–1,850 lines of cell source."
    steps = 7 + (n * 5) % 7                    # 7..13 steps of 3 cells: with the 8 fixed cells, 29..47 cells
    target = 1100 + (n * 263) % 751            # lines of cell source; the percent file adds ~2 a cell
    base = sum(len(s.splitlines()) for _, s, _ in _cells(n, slug, seed, steps, 0))
    return _cells(n, slug, seed, steps, max(0, target - base) // steps)


def _cells(n: int, slug: str, seed: int, steps: int, extra: int) -> list:
    rng = random.Random(seed * 1000 + n)
    Cls = slug.title()
    cells = [("markdown", f"# Module {n:02d}: {Cls}\n\nWelcome to **{Cls}**. In this module you build {slug} from scratch.\n\n"
                          + "\n".join(_prose(rng, 6)), None),
             ("code", f"#| default_exp core.{slug}\n#| export\nimport numpy as np\nimport math\nfrom typing import Optional",
              {"grade": False, "grade_id": f"{slug}-imports", "locked": False, "schema_version": 3, "solution": False}),
             ("markdown", "## Learning objectives\n\n" + "\n".join(f"- Understand {w}" for w in rng.sample(WORDS, 5)), None)]
    for k in range(1, steps + 1):
        cells.append(("markdown", _md_step(rng, k, Cls), None))
        cells.append(("code", _solution(rng, k, Cls, extra),
                      {"grade": False, "grade_id": f"op{k}", "locked": False, "schema_version": 3, "solution": True}))
        cells.append(("code", _test(rng, k, Cls),
                      {"grade": True, "grade_id": f"test-op{k}", "locked": True, "points": 1 + k % 3, "schema_version": 3,
                       "solution": False}))
    cells.append(("markdown", "## 🎯 Checkpoint\n\nReview what you built: shapes, broadcasting and the backward pass.", None))
    analysis = ["def analyze_memory(sizes=(10, 100, 1000)):", '    """Measure memory of the ops."""', "    import time"]
    analysis += [f"    t{i} = time.perf_counter()" for i in range(rng.randint(20, 40))] + ["    return sizes", "", "analyze_memory()"]
    cells.append(("code", "\n".join(analysis), None))
    cells.append(("markdown", "## 🤔 ML Systems Thinking\n\n" + "\n".join(f"{i}. " + p for i, p in enumerate(_prose(rng, 12), 1)), None))
    cells.append(("code", "if __name__ == '__main__':\n" + "\n".join(f"    test_unit_op{k}()" for k in range(1, steps + 1)), None))
    cells.append(("markdown", "## Summary\n\n" + "\n".join(_prose(rng, 8)) + "\n\nNext: the following module.", None))
    return cells


def to_ipynb(cells: list) -> str:
    out = []
    for i, (kind, src, g) in enumerate(cells):
        c = {"cell_type": kind, "id": f"cell-{i:03d}", "metadata": {"nbgrader": g} if g else {}, "source": src.splitlines(True)}
        if kind == "code": c.update(execution_count=None, outputs=[])
        out.append(c)
    nb = {"cells": out, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def to_percent(cells: list) -> str:
    parts = [PERCENT_HEADER]
    for kind, src, g in cells:
        if kind == "markdown":
            parts.append("# %% [markdown]\n" + "\n".join(("# " + l) if l else "#" for l in src.split("\n")) + "\n")
        else:
            head = "# %%" + (" nbgrader=" + json.dumps(g) if g else "")
            parts.append(head + "\n" + src + "\n")
    return "\n".join(parts)


def make_course(root, fmt: str = "ipynb", modules: int = 20, seed: int = SEED) -> dict:
    "Write the course into workspace `root`; {'cells': total cells, 'lines': [lines per module]}."
    root = Path(root)
    (root / ".tito").mkdir(parents=True, exist_ok=True)
    cells_total, lines = 0, []
    for n, slug in enumerate(MODULES[:modules], 1):
        d = root / "modules" / f"{n:02d}_{slug}"
        d.mkdir(parents=True, exist_ok=True)
        cells = module_cells(n, slug, seed)
        cells_total += len(cells)
        if fmt == "ipynb":
            (d / f"{n:02d}_{slug}.ipynb").write_text(to_ipynb(cells), encoding="utf-8")
            lines.append(sum(len(s.splitlines()) for _, s, _ in cells))
        else:
            text = to_percent(cells)
            (d / f"{slug}_dev.py").write_text(text, encoding="utf-8")
            lines.append(len(text.splitlines()))
    return {"cells": cells_total, "lines": lines}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--format", choices=("ipynb", "py"), default="ipynb")
    ap.add_argument("--modules", type=int, default=20)
    args = ap.parse_args(argv)
    info = make_course(args.root, args.format, args.modules)
    print(f"{args.modules} modules, {info['cells']} cells, {min(info['lines'])}–{max(info['lines'])} lines each")


if __name__ == "__main__":
    main()
