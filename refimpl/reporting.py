"""Recording what the book measures, so that its result pages quote the code, not a person.

A notebook that tries a paper's claim calls :func:`record_claim`. When the notebook is
executed by ``make notebooks`` (``tools/execute_notebooks.py`` sets ``REFIMPL_RECORD_DIR``)
the measurement is written as JSON beside the book's data and the reproductions page is
generated from it. Run anywhere else (Colab, nbval, a student's machine) it only returns
the record.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

STATUSES = ("reproduced", "partly", "not reproduced")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def record_claim(claim_id: str, *, status: str, measured: str, **values) -> dict:
    """Record the outcome of trying a paper's claim.

    Parameters
    ----------
    claim_id : str
        The claim's key in ``book/data/reproductions.yaml``.
    status : {"reproduced", "partly", "not reproduced"}
    measured : str
        One line saying what was measured, with the numbers.
    **values
        Numbers behind ``measured`` (JSON-serialisable), kept for the record.
    """
    if not isinstance(claim_id, str) or not _ID.match(claim_id):
        raise ValueError(f"claim_id must be a lowercase slug; got {claim_id!r}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
    if not isinstance(measured, str) or not measured.strip():
        raise ValueError("measured must be a non-empty string")
    record = {"id": claim_id, "status": status, "measured": measured,
              "values": {k: _plain(v) for k, v in values.items()}}
    out = os.environ.get("REFIMPL_RECORD_DIR")
    if out:
        path = Path(out) / f"{claim_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def _plain(v):
    """Turn NumPy scalars and arrays into plain JSON values."""
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def show_source(obj):
    """Display the source of a refimpl function or class, highlighted, in a notebook.

    The book's notebooks never define algorithms; they show refimpl's code with this.

    Parameters
    ----------
    obj : function, class or method
        What to show.

    Returns
    -------
    IPython.display.Code
        The highlighted source, rendered by the notebook.
    """
    import inspect

    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")
