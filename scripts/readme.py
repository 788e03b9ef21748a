"""Write README.md from nbs/index.ipynb, the README's source: its markdown cells, joined by one blank line.

Run `python scripts/readme.py` after editing nbs/index.ipynb (`--check` only says whether README.md is current).
tests/test_readme.py checks that the two agree.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INDEX, README = ROOT / "nbs" / "index.ipynb", ROOT / "README.md"


def render(nb_path=INDEX) -> str:
    "The README text a notebook renders to: every markdown cell, in order, separated by a blank line."
    cells = json.loads(Path(nb_path).read_text())["cells"]
    src = lambda c: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    return "\n\n".join(src(c).strip("\n") for c in cells if c["cell_type"] == "markdown") + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        ok = README.read_text() == text
        print("README.md is current" if ok else "README.md differs from nbs/index.ipynb: run python scripts/readme.py")
        return 0 if ok else 1
    README.write_text(text)
    return 0


if __name__ == "__main__": sys.exit(main())
