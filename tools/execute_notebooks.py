"""Execute the book's notebooks: MyST .md source -> executed .ipynb (committed with outputs).

    python tools/execute_notebooks.py --stale      # only those whose inputs changed (default)
    python tools/execute_notebooks.py --all        # every notebook
    python tools/execute_notebooks.py notebooks/01_meta/meta_factorization.md

A notebook is stale when its .ipynb is missing, has no outputs, or its cells' inputs differ
from the .md. Claims measured while executing are recorded under book/data/measured/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RECORD_DIR = ROOT / "book" / "data" / "measured"


def is_notebook_md(p: Path) -> bool:
    return "jupytext" in p.read_text(encoding="utf-8")[:2000]


def all_notebook_mds() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.rglob("*.md")
                  if ".ipynb_checkpoints" not in p.parts and is_notebook_md(p))


def cell_inputs(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def is_stale(md: Path) -> bool:
    ipynb = md.with_suffix(".ipynb")
    if not ipynb.exists():
        return True
    executed = nbformat.read(ipynb, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    if code and not any(c.get("outputs") for c in code):
        return True
    return cell_inputs(jupytext.read(md)) != cell_inputs(executed)


def execute(md: Path, timeout: int) -> float:
    nb = jupytext.read(md)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    os.environ["REFIMPL_RECORD_DIR"] = str(RECORD_DIR)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(md.parent)}}).execute()
    elapsed = time.perf_counter() - start
    jupytext.write(nb, md.with_suffix(".ipynb"), fmt="ipynb")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--all", action="store_true", help="execute every notebook")
    group.add_argument("--stale", action="store_true", help="only stale notebooks (default)")
    parser.add_argument("paths", nargs="*", type=Path, help="specific .md notebooks")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    args = parser.parse_args(argv)

    if args.paths:
        todo = [p.resolve().with_suffix(".md") for p in args.paths]
    elif args.all:
        todo = all_notebook_mds()
    else:
        todo = [p for p in all_notebook_mds() if is_stale(p)]
    if not todo:
        print("notebooks: all executed .ipynb are up to date")
    for md in todo:
        print(f"executing {md.relative_to(ROOT)} ...", flush=True)
        elapsed = execute(md, args.timeout)
        print(f"  done in {elapsed:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
