"""Tensor trains (chapter 06's primitive): a matrix as a matrix product operator (MPO).

With ``d_out = o₁⋯o_n`` and ``d_in = i₁⋯i_n``, the matrix ``W`` seen as the tensor
``W[(o₁…o_n), (i₁…i_n)]`` is written as a chain of cores ``C_k`` (χ_{k−1}×o_k×i_k×χ_k,
``χ₀ = χ_n = 1``):

    W[(o₁…o_n), (i₁…i_n)] = Σ_{a} C₁[1, o₁, i₁, a₁] C₂[a₁, o₂, i₂, a₂] ⋯ C_n[a_{n−1}, o_n, i_n, 1].

:func:`mpo_decompose` computes the cores by sequential truncated SVDs (the TT-SVD of the tensor
with the paired indices ``(o_k, i_k)``), keeping at most ``bond`` singular values per cut;
:meth:`MPO.reconstruct` contracts them back. :func:`mpo_modes` splits a dimension into ``n``
balanced factors. Used by DoTA (:mod:`refimpl.lora.dota`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_positive_int

__all__ = ["MPO", "mpo_decompose", "mpo_modes"]


class MPO(NamedTuple):
    """A matrix product operator of a (o₁⋯o_n)×(i₁⋯i_n) matrix.

    Attributes
    ----------
    cores : tuple of arrays or torch tensors
        ``cores[k]`` has shape (χ_{k−1}, o_k, i_k, χ_k) with ``χ₀ = χ_n = 1``.
    """

    cores: tuple[Any, ...]

    def reconstruct(self) -> Array:
        """The d_out×d_in matrix of the cores (``W`` itself at full bond)."""
        t = self.cores[0]  # (1, O, I, χ)
        for c in self.cores[1:]:
            a, O, I_, _ = t.shape
            t = _xp.einsum("aOIx,xoib->aOoIib", t, c)
            t = t.reshape(a, O * c.shape[1], I_ * c.shape[2], c.shape[3])
        return t[0, :, :, 0]


def mpo_modes(d: int, n: int) -> tuple[int, ...]:
    """Split ``d`` into ``n`` balanced factors.

    The prime factors of ``d``, largest first, each go to the currently smallest factor.

    Parameters
    ----------
    d : int
        The dimension to split, ``>= 1``.
    n : int
        The number of factors, ``>= 1``.

    Returns
    -------
    tuple of int
        ``n`` factors with product ``d``, in decreasing order (1s where ``d`` has fewer than
        ``n`` prime factors).

    Raises
    ------
    TypeError, ValueError
        If ``d`` or ``n`` is not a positive integer.
    """
    d = check_positive_int(d, "d")
    n = check_positive_int(n, "n")
    primes, m, p = [], d, 2
    while p * p <= m:
        while m % p == 0:
            primes.append(p)
            m //= p
        p += 1
    if m > 1:
        primes.append(m)
    modes = [1] * n
    for q in sorted(primes, reverse=True):
        modes[modes.index(min(modes))] *= q
    return tuple(sorted(modes, reverse=True))


def _modes(modes: Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(modes, str) or not hasattr(modes, "__iter__"):
        raise TypeError(f"{name} must be a sequence of positive integers; got {modes!r}")
    return tuple(check_positive_int(m, f"{name}[{k}]") for k, m in enumerate(modes))


def mpo_decompose(W: Array, out_modes: Sequence[int], in_modes: Sequence[int],
                  bond: int | None = None, *,
                  backend: str = "auto") -> MPO:
    """TT-SVD of a matrix into MPO cores with bond dimensions at most ``bond``.

    Each of the ``n − 1`` cuts keeps the leading singular triplets of the current unfolding, so
    the error ``‖W − MPO‖_F`` is at most the root sum of squares of all discarded singular
    values (the TT-SVD bound). With two cores and bond ``k`` the result is the nearest sum of
    ``k`` Kronecker products (:func:`refimpl.tensor.kron_svd`).

    Parameters
    ----------
    W : (d_out, d_in) array or torch tensor
        Real floating-point matrix.
    out_modes, in_modes : sequence of int
        Factorisations ``d_out = Π out_modes`` and ``d_in = Π in_modes`` with the same number
        ``n`` of modes (e.g. from :func:`mpo_modes`).
    bond : int, optional
        Largest bond dimension (TT rank) kept at each cut; ``None`` keeps all (exact).
    backend : {"auto", "numpy", "torch"}
        ``"auto"`` follows the input's kind.

    Returns
    -------
    MPO
        The ``n`` cores, left-orthonormal except the last, as the caller's array kind and
        dtype (computed in float32 for lower precisions).

    Raises
    ------
    ValueError
        If the modes do not have one length or do not multiply to the shape of ``W``, or if
        ``W`` is empty or not finite.
    TypeError
        If ``W`` is not a real floating-point matrix, a mode or ``bond`` not an integer.
    """
    W, _, back = _xp.prepare(W, "W", backend=backend, batch=False)
    out_modes, in_modes = _modes(out_modes, "out_modes"), _modes(in_modes, "in_modes")
    n = len(out_modes)
    if n != len(in_modes) or n < 1 or math.prod(out_modes) != W.shape[0] \
            or math.prod(in_modes) != W.shape[1]:
        raise ValueError(f"out_modes {out_modes} and in_modes {in_modes} must have one length "
                         f"and multiply to the shape {tuple(W.shape)}")
    if bond is not None:
        bond = check_positive_int(bond, "bond")
    W = _xp.linalg_float(W)
    # (o₁…o_n, i₁…i_n) → (o₁, i₁, o₂, i₂, …)
    T = _xp.permute(W.reshape(*out_modes, *in_modes),
                    [j for k in range(n) for j in (k, n + k)])
    cores, left, rest = [], 1, T.reshape(-1)
    for k in range(n - 1):
        U, S, Vt = _xp.svd(rest.reshape(left * out_modes[k] * in_modes[k], -1))
        chi = len(S) if bond is None else min(bond, len(S))
        cores.append(U[:, :chi].reshape(left, out_modes[k], in_modes[k], chi))
        rest = S[:chi, None] * Vt[:chi]
        left = chi
    cores.append(rest.reshape(left, out_modes[-1], in_modes[-1], 1))
    return back(MPO(tuple(cores)))
