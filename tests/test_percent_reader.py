"""Our percent splitter agrees with jupytext: same cells, kinds, sources and the metadata graders read (nbgrader, tags).

Checked on every percent file we have (the generated course, the package's own exported modules, the percent form of
every notebook in nbs/, the modules the other tests write) and on files hypothesis builds from the pieces courses use
(headers, markers with options, commented and triple-quoted markdown, strings hiding markers, fences, blank lines,
magics). Where ours declines, jupytext reads the file, so `read_notebook` always gives jupytext's cells; the same holds
for `fmt="py"`, where jupytext guesses the format.
"""
import json, sys, warnings
from pathlib import Path

import pytest
pytestmark = pytest.mark.slow
from hypothesis import HealthCheck, given, settings, strategies as st

import jupytext
from tinytorch_progress.notebooks import _Decline, _py_cells, split_percent

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gen_course import MODULES, module_cells, to_percent  # noqa: E402


KEPT = ("nbgrader", "tags")  # the metadata graders read; jupytext's own (`lines_to_next_cell`, `cell_marker`) is not kept


def graded(cells) -> list:
    return [(kind, src, {k: md[k] for k in KEPT if k in md}) for kind, src, md in cells]


def jupytext_cells(text: str, fmt: str = "py:percent") -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = jupytext.reads(text, fmt=fmt)
    return graded((c.cell_type, c.source, dict(c.metadata)) for c in nb.cells)


def ours(text: str):
    "Our splitter's cells, or None when it declines."
    try: return graded(split_percent(text))
    except _Decline: return None


def corpus() -> dict:
    "name -> percent text, for every percent file the project has or makes."
    out = {f"course/{s}": to_percent(module_cells(n, s)) for n, s in enumerate(MODULES, 1)}
    for p in sorted((ROOT / "tinytorch_progress").rglob("*.py")):
        if p.name != "_modidx.py": out[f"package/{p.relative_to(ROOT)}"] = p.read_text(encoding="utf-8")
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[f"nbs/{p.name}"] = jupytext.writes(jupytext.read(p), fmt="py:percent")
    sys.path.insert(0, str(ROOT / "tests"))
    import test_report_card
    out["tests/activations"] = test_report_card.to_percent(test_report_card.ACTIVATIONS)
    return out


CORPUS = corpus()


def test_the_corpus_is_read_mostly_by_us():
    accepted = [k for k, t in CORPUS.items() if ours(t) is not None]
    assert all(f"course/{s}" in accepted for s in MODULES)
    assert len(accepted) >= 30, accepted


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_agrees_with_jupytext_on_the_corpus(name):
    text, ref = CORPUS[name], jupytext_cells(CORPUS[name])
    mine = ours(text)
    assert mine is None or mine == ref
    got = graded((c.cell_type, c.source, c.metadata) for c in _py_cells(text, Path(name)))
    assert got == ref                                                     # with jupytext behind what we decline
    got = graded((c.cell_type, c.source, c.metadata) for c in _py_cells(text, Path(name), "py"))
    assert got == jupytext_cells(text, "py")                              # the format guessed, as jupytext guesses it


# Pieces of percent files. Lines are joined with newlines; a file may end with or without one.
MARKERS = st.sampled_from(["# %%", "# %% ", "# %% [markdown]", "# %% [raw]", '# %% nbgrader={"grade": false, "solution": true}',
                           '# %% [markdown] nbgrader={"grade_id": "a b", "locked": true}', '# %% tags=["x", "y"]',
                           '# %% nbgrader={"points": 2} tags=["t"]', "#%%", "# %% Title", "# %%%", "  # %%", "# In[1]:",
                           "# %% [md]", '# %% nbgrader={"a": "x=y"}', "# <codecell>", '# %% {"nbgrader": {"a": 1}}'])
BODY = st.sampled_from(["", "", " ", "x = 1", "def f():", "    return 1", "class A:", "    pass", "@dec", ")", "# comment",
                        "#| export", '"""', "'''", 's = """', 'doc = """start', "end'''", "# %% inside?", '"# %%"',
                        "# ## Heading", "# Some *markdown* text", "#", "# ```python", "# ```", "# ~~~", "```", "# ````",
                        "# - item", "%matplotlib inline", "# %time x", "!ls", "# !pip install x", "x = %who", "ls",
                        "# cd there", "What?", "# Why?", "# +", "## +", "r'''", '"""x"""', "# $x^2$", "async def g():",
                        "\tx", "x = 'it''s'", 'y = "a\\"b"', "# coding: utf-8", "# -*- coding: utf-8 -*-", "é = 1"])
HEADERS = st.sampled_from(["", "# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       extension: .py\n"
                               "#       format_name: percent\n#       format_version: '1.3'\n#       jupytext_version: 1.17.1\n"
                               "#   kernelspec:\n#     display_name: Python 3 (ipykernel)\n#     language: python\n"
                               "#     name: python3\n# ---\n",
                           "# ---\n# jupyter:\n#   kernelspec:\n#     name: python3\n# ---\n\n",
                           "# ---\n# title: x\n# ---\n", "#!/usr/bin/env python\n", "# ---\n# jupyter:\n#   jupytext:\n"
                           "#     formats: ipynb,py:percent\n# ---\n#\n"])


@st.composite
def percent_files(draw):
    parts = [draw(HEADERS)]
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()) or not parts[1:]: parts.append(draw(MARKERS))
        parts += draw(st.lists(BODY, max_size=8))
    text = "\n".join(parts)
    return text + ("\n" if draw(st.booleans()) else "")


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(percent_files())
def test_agrees_with_jupytext_on_generated_files(text):
    try: ref = jupytext_cells(text)
    except Exception: ref = None
    mine = ours(text)
    if mine is None: return
    if ref is None:  # jupytext refuses only a header nbformat would not take (a kernelspec without a name): the cells are fine
        assert text.startswith("# ---\n# jupyter:\n"), text
        ref = jupytext_cells(PLAIN_HEADER + text.split("\n# ---\n", 1)[1])
    assert mine == ref, text


PLAIN_HEADER = "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---\n"


def test_declines_what_it_does_not_know():
    for text in ["# %% Title\nx = 1\n", "# %%\n%matplotlib inline\n", "# ---\n# title: x\n# ---\n# %%\nx\n",
                 "# ---\n# jupyter:\n#   jupytext:\n#     text_representation:\n#       format_name: light\n# ---\nx = 1\n"]:
        assert ours(text) is None, text
