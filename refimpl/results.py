"""Result types shared by every chapter.

- :class:`Info`: the convergence report of every iterative solver. A solver that iterates
  takes ``return_info=False`` and, when it is true, returns ``(result, info)``.

Decomposition results are ``NamedTuple`` s defined once, in the lowest chapter that needs
them (for example :class:`refimpl.linalg.TruncatedSVD`), with a ``reconstruct()`` method
where the factors multiply back to the input.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Info"]


class Info(NamedTuple):
    """How an iterative solver ended.

    Attributes
    ----------
    n_iter : int
        Iterations (sweeps, steps) performed.
    converged : bool
        Whether the stopping test was met within the iteration limit.
    errors : tuple of float
        The quantity the stopping test reads, after each iteration (its last entry is the
        final value); what it measures is documented by each solver.
    """

    n_iter: int
    converged: bool
    errors: tuple[float, ...] = ()


# Passed through unchanged when a result is returned as the caller's array kind. Set after
# the class: in its body mypy would take the attribute for a field (and Info(n, c) for a call
# missing one).
Info._passthrough = True  # type: ignore[attr-defined]
