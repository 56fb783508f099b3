"""The book's tooling, importable from the repository root (``from tools import build_pages``).

- :mod:`tools.build_pages`: the generated pages (coverage, reproductions, benchmarks, map,
  execution status);
- :mod:`tools.execute_notebooks`: executes the notebooks' MyST sources into ``.ipynb``.

Both also run as scripts (``python tools/build_pages.py``); the tests import them as modules
(``pythonpath = ["."]`` in ``pyproject.toml``).
"""
