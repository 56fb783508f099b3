"""Rotary position embedding (RoPE), the one implementation every attention variant uses.

A vector ``x ∈ ℝ^D`` (``D`` even) at position ``p`` is rotated pairwise: its two halves
``(x₁, x₂)`` become ``(x₁ cos θp − x₂ sin θp, x₂ cos θp + x₁ sin θp)`` with
``θ_i = base^(−2i/D)``. The "rotate half" pairing (coordinate ``i`` with ``i + D/2``) is a fixed
permutation of the RoFormer paper's adjacent pairing; scores are the same up to that
permutation of the weights. Because the rotation acts on the last axis only, it commutes with
any linear map on the other axes, which is what tensor product attention relies on.
"""

from __future__ import annotations

import torch
from torch import nn

from refimpl._validation import check_positive, check_positive_int


def rope_angles(positions: torch.Tensor, dim: int,
                base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` of the angles ``p · θ_i`` with ``θ_i = base^(−2i/dim)``.

    Parameters
    ----------
    positions : torch.Tensor
        Integer positions ``(T,)``.
    dim : int
        The (even) dimension being rotated.
    base : float
        RoPE base.

    Returns
    -------
    tuple of torch.Tensor
        ``cos`` and ``sin``, float64, each ``(T, dim/2)``, on ``positions``' device.
    """
    half = dim // 2
    inv_freq = base ** (-torch.arange(half, dtype=torch.float64, device=positions.device) / half)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the halves of ``x``'s last axis by precomputed angles.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., T, D)`` with ``D`` even.
    cos, sin : torch.Tensor
        ``(T, D/2)``, e.g. from :func:`rope_angles`; cast to ``x``'s dtype.

    Returns
    -------
    torch.Tensor
        The rotated ``x``, same shape and dtype.
    """
    return _rotate(x, *_full_width(cos.to(x.dtype), sin.to(x.dtype)))


def _full_width(cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The half-width tables as the full-width ``[cos, cos]`` and ``[−sin, sin]``."""
    return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)


def _rotate(x: torch.Tensor, cos2: torch.Tensor, sin2: torch.Tensor) -> torch.Tensor:
    """``x · cos2 + [x₂, x₁] · sin2`` with full-width tables ``cos2 = [cos, cos]`` and
    ``sin2 = [−sin, sin]`` (``(T, D)``, in ``x``'s dtype): three passes over ``x`` and no
    half-width temporaries (the half-by-half form is several times slower on a CPU)."""
    half = x.shape[-1] // 2
    swapped = torch.cat((x[..., half:], x[..., :half]), dim=-1)
    return (x * cos2).addcmul_(swapped, sin2)


def _check(x: torch.Tensor, positions: torch.Tensor) -> None:
    if x.shape[-1] % 2:
        raise ValueError(f"rope needs an even last dimension; got {x.shape[-1]}")
    if positions.ndim != 1 or positions.shape[0] != x.shape[-2]:
        raise ValueError(
            f"positions must have shape ({x.shape[-2]},) to match x's sequence axis; "
            f"got {tuple(positions.shape)}"
        )


def rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate the last axis of ``x`` (shape ``(..., T, D)``) by the angles of ``positions`` (T,).

    The angles are computed in float64 and cast to ``x``'s dtype.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., T, D)`` with ``D`` even.
    positions : torch.Tensor
        Integer positions ``(T,)`` of the rows of ``x``.
    base : float
        RoPE base.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``.

    Raises
    ------
    ValueError
        If ``D`` is odd or ``positions`` does not match ``x``'s sequence axis.
    """
    _check(x, positions)
    return apply_rotary(x, *rope_angles(positions, x.shape[-1], base))


class RotaryEmbedding(nn.Module):
    """RoPE as a module: ``RotaryEmbedding(dim)(x, positions)`` equals :func:`rope`.

    Parameters
    ----------
    dim : int
        The (even) dimension rotated.
    base : float
        RoPE base, greater than 1.

    Raises
    ------
    ValueError, TypeError
        If ``dim`` is not a positive even integer or ``base`` is not a finite number > 1.
    """

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        if self.dim % 2:
            raise ValueError(f"rope dim must be even; got {dim}")
        self.base = check_positive(base, "base")
        if self.base <= 1:  # base^(-2i/dim) must decrease with i
            raise ValueError(f"rope base must be greater than 1; got {base}")
        self._table: tuple[torch.Tensor, torch.Tensor] | None = None   # float64 (size, dim)
        self._cast: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """:func:`rope` with the cos/sin table kept (grown by doubling; cast once per dtype).

        Parameters
        ----------
        x : torch.Tensor
            ``(..., T, dim)``.
        positions : torch.Tensor
            Integer positions ``(T,)``.

        Returns
        -------
        torch.Tensor
            Same shape and dtype as ``x``.
        """
        if x.shape[-1] != self.dim:
            raise ValueError(f"x's last dimension must be {self.dim}; got {x.shape[-1]}")
        _check(x, positions)
        need = int(positions.max()) + 1 if positions.numel() else 0
        table = self._table
        if table is None or table[0].shape[0] < need or table[0].device != x.device:
            size = max(need, 2 * (table[0].shape[0] if table is not None else 0), 64)
            table = self._table = _full_width(*rope_angles(torch.arange(size, device=x.device),
                                                           self.dim, self.base))
            self._cast = {}
        if x.dtype not in self._cast:  # the float64 table in x's dtype, kept until it grows
            self._cast[x.dtype] = (table[0].to(x.dtype), table[1].to(x.dtype))
        cos2, sin2 = self._cast[x.dtype]
        first = int(positions[0]) if positions.numel() else 0
        if need - first == positions.numel() and torch.equal(
                positions, torch.arange(first, need, device=positions.device)):
            rows = slice(first, need)  # consecutive positions (every layer's case): a view
            return _rotate(x, cos2[rows], sin2[rows])
        return _rotate(x, cos2.index_select(0, positions), sin2.index_select(0, positions))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base:g}"
