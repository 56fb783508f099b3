"""Execute the book's notebooks: MyST .md source -> executed .ipynb (committed with outputs).

    python tools/execute_notebooks.py --stale      # only those whose inputs changed (default)
    python tools/execute_notebooks.py --all        # every notebook
    python tools/execute_notebooks.py notebooks/01_meta/meta_factorization.md

A notebook is stale when its .ipynb is missing, has no outputs, or its cells' inputs differ
from the .md. Claims measured while executing are recorded under book/data/measured/.

Each executed .ipynb records, in its notebook metadata under "refimpl", the kernel
configuration its outputs were made under (the BLAS/OpenMP environment variables the kernel
started with, torch's thread count after the last cell, the machine and refimpl's version);
nbclient records each cell's timestamps. tools/build_pages.py reads both for the book's
execution-status page. Neither is compared by `is_stale` or nbval (they read the cells'
sources and outputs only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from refimpl.backend import cpu_model, kernel_env

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RECORD_DIR = ROOT / "book" / "data" / "measured"
# The notebook-metadata key of the run record (tools/build_pages.py reads it as RUN_METADATA).
RUN_METADATA = "refimpl"
# Run in the notebook's kernel after its last cell (and then dropped from the notebook): what
# the kernel itself knows of its configuration, as one line of JSON.
_PROBE_MARK = "refimpl-run-probe:"
_PROBE = f"""\
def _refimpl_probe():
    import json
    out = {{}}
    try:
        import torch
        out["torch_threads"] = torch.get_num_threads()
    except Exception:
        out["torch_threads"] = None
    try:
        import refimpl
        out["refimpl"] = refimpl.__version__
    except Exception:
        out["refimpl"] = None
    print("{_PROBE_MARK}" + json.dumps(out))
_refimpl_probe()
del _refimpl_probe"""


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


def machine_summary() -> str:
    """The CPU and platform in a few words ("Intel(R) Xeon(R) Processor, 2 CPUs, Linux x86_64")."""
    n = os.cpu_count()
    cpus = f"{n} CPU{'s' if n != 1 else ''}" if n else ""
    return ", ".join(x for x in (cpu_model(), cpus, f"{platform.system()} {platform.machine()}")
                     if x)


def run_record(environ, probe: dict | None = None) -> dict:
    """The metadata a run leaves in its notebook (``nb.metadata[RUN_METADATA]``).

    ``environ`` is the environment the kernel was started with; ``probe`` what the kernel
    reported after the last cell (``torch_threads``, ``refimpl``).
    """
    probe = probe or {}
    return {
        "kernel_env": kernel_env(environ),
        "torch_threads": probe.get("torch_threads"),
        "machine": machine_summary(),
        "refimpl": probe.get("refimpl"),
    }


def _probe_result(cell) -> dict | None:
    for output in cell.get("outputs", []):
        for line in str(output.get("text", "")).splitlines():
            if line.startswith(_PROBE_MARK):
                try:
                    return json.loads(line[len(_PROBE_MARK):])
                except json.JSONDecodeError:
                    return None
    return None


def execute(md: Path, timeout: int) -> float:
    nb = jupytext.read(md)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata.pop(RUN_METADATA, None)
    os.environ["REFIMPL_RECORD_DIR"] = str(RECORD_DIR)
    probe = nbformat.v4.new_code_cell(_PROBE)
    nb.cells.append(probe)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(md.parent)}}).execute()
    finally:
        if nb.cells and nb.cells[-1] is probe:
            nb.cells.pop()
    elapsed = time.perf_counter() - start
    nb.metadata[RUN_METADATA] = run_record(os.environ, _probe_result(probe))
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
