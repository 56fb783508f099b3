"""refimpl.reporting: claims, the source a notebook shows, result tables."""

import json

import numpy as np
import pytest

from refimpl import reporting
from refimpl.reporting import algorithmic_core, record_claim, show_source, table

SOURCE = '''
def f(A, rank, tol=None, *, backend="auto"):
    """Docstring with :math:`x` roles.

    More lines.
    """
    A, path, back = _xp.prepare(A, backend=backend)
    k = check_rank(rank, "rank", 4)
    tol = check_positive(tol, "tol")
    check_choice(backend, "backend", ("auto",))
    want = (k, k)
    if A.shape != want:
        raise ValueError("bad shape")
    if tol is not None:
        check_positive(tol, "tol")
    # the algorithm
    if k > 2:
        return A
    else:
        if tol is None:
            raise ValueError("tol")
        return back(A[:k])


class C:
    """Class docstring."""

    def g(self, x):
        """Method docstring."""
        _validation.check_square(x, "x")
        return x @ x
'''


def test_core_drops_docstrings_and_checks_but_keeps_the_algorithm():
    core = algorithmic_core(SOURCE)
    assert "Docstring" not in core and "Method docstring" not in core
    assert "check_positive" not in core and "check_choice" not in core
    assert "check_square" not in core and "raise" not in core
    assert "want" not in core  # assigned only for a hidden check
    assert "if tol is not None" not in core  # an if that only checks
    # k is read by the algorithm, so its (checked) assignment stays
    assert 'k = check_rank(rank, "rank", 4)' in core
    assert "# the algorithm" in core and "return back(A[:k])" in core
    assert "\n\n\n" not in core
    compile(core, "<core>", "exec")  # still valid Python


def test_show_source_of_a_library_function():
    from refimpl import sketch

    src = show_source(sketch.randomized_svd)
    assert src.file == "refimpl/sketch/rsvd.py"
    assert src.name.endswith("randomized_svd")
    assert len(src.core.splitlines()) < len(src.full.splitlines()) / 2
    assert repr(src) == src.core and '"""' in src.full and '"""' not in src.core
    page = src._repr_html_()
    assert page.count("<details>") == 1 and "pre-wrap" in page
    assert "Full source of" in page


def test_show_source_of_a_numba_kernel_is_its_python_source():
    from refimpl.sketch import _sketch_numba

    src = show_source(_sketch_numba.fwht_rows)
    assert src.full.lstrip().startswith(("@", "def fwht_rows"))


def test_record_claim_returns_a_one_line_record_and_writes_json(tmp_path, monkeypatch):
    monkeypatch.setenv("REFIMPL_RECORD_DIR", str(tmp_path))
    claim = record_claim("a-b", status="partly", measured="x = 1", x=np.float64(1.0),
                         v=np.arange(2))
    assert repr(claim) == "claim a-b: partly"
    assert json.loads((tmp_path / "a-b.json").read_text()) == {
        "id": "a-b", "status": "partly", "measured": "x = 1",
        "values": {"x": 1.0, "v": [0, 1]}}


@pytest.mark.parametrize("kwargs", [dict(claim_id="Bad Id", status="partly", measured="m"),
                                    dict(claim_id="ok", status="maybe", measured="m"),
                                    dict(claim_id="ok", status="partly", measured=" ")])
def test_record_claim_rejects_bad_input(kwargs, monkeypatch):
    monkeypatch.delenv("REFIMPL_RECORD_DIR", raising=False)
    with pytest.raises(ValueError):
        record_claim(kwargs.pop("claim_id"), **kwargs)


def test_table_formats_cells_and_renders_text_and_html():
    t = table([{"method": "svd", "error": 0.012345, "n": 12345, "ok": True},
               {"method": "cur", "error": np.float64(2.5), "n": 7, "ok": False}],
              formats={"error": ".2e"}, caption="Errors")
    assert t.rows == (("svd", "1.23e-02", "12,345", "yes"), ("cur", "2.50e+00", "7", "no"))
    lines = repr(t).splitlines()
    assert lines[0] == "Errors" and lines[1].split() == ["method", "error", "n", "ok"]
    assert len({len(line) for line in lines[1:]}) == 1  # aligned columns
    page = t._repr_html_()
    assert page.count("<tr>") == 3 and "<caption>Errors</caption>" in page
    assert "&lt;" in table([["<b>"]], ["x"])._repr_html_()


@pytest.mark.parametrize("args,kwargs", [(([[1, 2]],), {}),
                                         (([[1, 2]], ["a"]), {}),
                                         (([{"a": 1}],), {"formats": {"b": ".2f"}}),
                                         (([], []), {})])
def test_table_rejects_bad_input(args, kwargs):
    with pytest.raises(ValueError):
        table(*args, **kwargs)


def test_statuses_are_the_three_verdicts():
    assert reporting.STATUSES == ("reproduced", "partly", "not reproduced")
