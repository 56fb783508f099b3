"""The notebook executor (tools/execute_notebooks.py): the run record it leaves in each executed
notebook's metadata, which the execution-status page reads, and which neither the staleness test
nor jupytext's conversions disturb."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import pytest

from tools import build_pages as bp
from tools import execute_notebooks as ex

TINY = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A tiny notebook

```{code-cell} ipython3
print(1 + 1)
```
"""


def _md(tmp_path: Path) -> Path:
    md = tmp_path / "tiny.md"
    md.write_text(TINY, encoding="utf-8")
    return md


def test_the_executor_and_the_page_generator_agree_on_the_record():
    assert ex.RUN_METADATA == bp.RUN_METADATA
    # the variables the executor records are the ones the page reads (one list, in refimpl)
    assert set(ex.run_record({})["kernel_env"]) == set(bp.KERNEL_ENV_VARS)


def test_run_record_reads_the_kernel_environment():
    env = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell",
           "OMP_NUM_THREADS": "1", "PATH": "/bin"}
    record = ex.run_record(env, {"torch_threads": 1, "refimpl": "0.1.0"})
    assert record["kernel_env"] == {"MKL_ENABLE_INSTRUCTIONS": "AVX2",
                                    "OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "1",
                                    "MKL_NUM_THREADS": None, "OPENBLAS_NUM_THREADS": None}
    assert record["torch_threads"] == 1 and record["refimpl"] == "0.1.0"
    assert isinstance(record["machine"], str) and record["machine"]
    assert json.loads(json.dumps(record)) == record  # plain JSON, as notebook metadata must be
    assert ex.run_record({})["torch_threads"] is None
    assert bp.kernel_summary(record) == "AVX2/Haswell, OMP 1, MKL –, OpenBLAS –, torch 1"


def test_record_survives_jupytext_and_leaves_staleness_alone(tmp_path):
    md = _md(tmp_path)
    nb = jupytext.read(md)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    nb.metadata[ex.RUN_METADATA] = ex.run_record({"OMP_NUM_THREADS": "1"}, {"torch_threads": 1})
    jupytext.write(nb, md.with_suffix(".ipynb"), fmt="ipynb")
    written = nbformat.read(md.with_suffix(".ipynb"), as_version=4)
    assert written.metadata[ex.RUN_METADATA] == nb.metadata[ex.RUN_METADATA]
    assert not ex.is_stale(md)
    # the record belongs to the executed notebook only: the MyST source never carries it
    assert ex.RUN_METADATA not in jupytext.writes(written, fmt="md:myst")


@pytest.mark.slow
def test_execute_records_the_run(tmp_path, monkeypatch):
    monkeypatch.delenv("REFIMPL_RECORD_DIR", raising=False)  # execute() sets it
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    md = _md(tmp_path)
    ex.execute(md, timeout=120)
    nb = json.loads(md.with_suffix(".ipynb").read_text(encoding="utf-8"))
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "code"]  # no probe left
    assert nb["cells"][1]["outputs"][0]["text"] in (["2\n"], "2\n")
    record = nb["metadata"][ex.RUN_METADATA]
    assert record["kernel_env"]["OMP_NUM_THREADS"] == "1"
    assert record["kernel_env"]["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    assert record["torch_threads"] == 1  # torch follows OMP_NUM_THREADS in the kernel
    assert record["refimpl"] == __import__("refimpl").__version__
    seconds, last = bp.execution_times(nb)
    assert seconds is not None and 0 <= seconds < 60 and last is not None
    assert not ex.is_stale(md)
