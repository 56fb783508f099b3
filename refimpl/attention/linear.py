"""Linear-time attention as structured matrices: SSD (state space duality) and the delta rule.

Each model is written three ways that must agree: a *quadratic* form that materialises the
T×T mixing matrix (the attention view), a *recurrent* form with a fixed-size state (the RNN
view, what decoding uses) and a *chunked* form that runs the quadratic form inside blocks of
``chunk`` tokens and passes the state between blocks (what training uses).

Shapes: ``(batch, heads, T, dim)`` for sequences, ``(batch, heads, T)`` for per-token scalars.
"""

from __future__ import annotations

import torch

from refimpl._validation import check_positive_int


def _segsum(log_a: torch.Tensor) -> torch.Tensor:
    """``L[t, s] = Σ_{s<k≤t} log a_k`` for ``s ≤ t`` and ``-inf`` above the diagonal."""
    T = log_a.shape[-1]
    cum = torch.cumsum(log_a, dim=-1)
    L = cum[..., :, None] - cum[..., None, :]
    upper = torch.ones(T, T, dtype=torch.bool, device=log_a.device).triu(1)
    return L.masked_fill(upper, float("-inf"))


def ssd_matrix(log_a: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """The 1-semiseparable mixing matrix ``M = (C Bᵀ) ∘ L``, ``L[t, s] = a_{s+1} ⋯ a_t`` (s ≤ t).

    Every block of ``M`` below the diagonal has rank at most ``N`` (the state size).

    Parameters
    ----------
    log_a : torch.Tensor
        Log decays ``(..., T)``, ≤ 0.
    B, C : torch.Tensor
        Input and output maps ``(..., T, N)``.

    Returns
    -------
    torch.Tensor
        ``M`` of shape ``(..., T, T)``, zero above the diagonal.
    """
    return (C @ B.transpose(-1, -2)) * torch.exp(_segsum(log_a))


def ssd_quadratic(x: torch.Tensor, log_a: torch.Tensor, B: torch.Tensor,
                  C: torch.Tensor) -> torch.Tensor:
    """``y = M x`` with :func:`ssd_matrix` (the attention view of SSD).

    Parameters
    ----------
    x : torch.Tensor
        Inputs ``(..., T, P)``.
    log_a : torch.Tensor
        Log decays ``(..., T)``, ≤ 0.
    B, C : torch.Tensor
        Input and output maps ``(..., T, N)`` (N is the state size).

    Returns
    -------
    torch.Tensor
        ``y`` of shape ``(..., T, P)``.
    """
    return ssd_matrix(log_a, B, C) @ x


def ssd_recurrent(x: torch.Tensor, log_a: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                  state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``h_t = a_t h_{t-1} + B_t x_tᵀ`` (N×P), ``y_t = h_tᵀ C_t`` (the RNN view of SSD).

    Parameters
    ----------
    x, log_a, B, C : torch.Tensor
        As for :func:`ssd_quadratic`.
    state : torch.Tensor, optional
        Initial state ``(..., N, P)``; default zero.

    Returns
    -------
    tuple of torch.Tensor
        ``(y (..., T, P), final state (..., N, P))``.
    """
    h = x.new_zeros(*x.shape[:-2], B.shape[-1], x.shape[-1]) if state is None else state
    ys = []
    for t in range(x.shape[-2]):
        h = torch.exp(log_a[..., t, None, None]) * h + B[..., t, :, None] * x[..., t, None, :]
        ys.append((C[..., t, :, None] * h).sum(-2))
    return torch.stack(ys, dim=-2), h


def ssd_chunked(x: torch.Tensor, log_a: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Quadratic form inside chunks of ``chunk`` tokens, states passed between chunks.

    Parameters
    ----------
    x, log_a, B, C : torch.Tensor
        As for :func:`ssd_quadratic`.
    chunk : int
        Tokens per chunk (≥ 1).

    Returns
    -------
    tuple of torch.Tensor
        ``(y (..., T, P), final state (..., N, P))``, equal to :func:`ssd_recurrent`'s.
    """
    chunk = check_positive_int(chunk, "chunk")
    T = x.shape[-2]
    h = x.new_zeros(*x.shape[:-2], B.shape[-1], x.shape[-1])
    ys = []
    for s in range(0, T, chunk):
        sl = slice(s, min(T, s + chunk))
        xc, la, Bc, Cc = x[..., sl, :], log_a[..., sl], B[..., sl, :], C[..., sl, :]
        cum = torch.cumsum(la, dim=-1)                                     # decay from chunk start
        y = ssd_quadratic(xc, la, Bc, Cc) + torch.exp(cum)[..., None] * (Cc @ h)
        to_end = torch.exp(cum[..., -1:] - cum)                            # a_{s+1} ⋯ a_end
        h = (torch.exp(cum[..., -1])[..., None, None] * h
             + (Bc * to_end[..., None]).transpose(-1, -2) @ xc)
        ys.append(y)
    return torch.cat(ys, dim=-2), h


def delta_rule_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                         state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """DeltaNet: ``S_t = S_{t-1}(I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ``, ``o_t = S_t q_t``.

    ``S`` is ``d_v × d_k``; each step is a rank-one (generalised Householder) update that
    overwrites the value stored under key ``k_t``.

    Parameters
    ----------
    q, k : torch.Tensor
        Queries and keys ``(..., T, d_k)``.
    v : torch.Tensor
        Values ``(..., T, d_v)``.
    beta : torch.Tensor
        Write strengths ``(..., T)``.
    state : torch.Tensor, optional
        Initial state ``(..., d_v, d_k)``; default zero.

    Returns
    -------
    tuple of torch.Tensor
        ``(o (..., T, d_v), final state (..., d_v, d_k))``.
    """
    S = q.new_zeros(*q.shape[:-2], v.shape[-1], k.shape[-1]) if state is None else state
    outs = []
    for t in range(q.shape[-2]):
        kt, vt, bt = k[..., t, :], v[..., t, :], beta[..., t, None]
        u = bt * (vt - (S @ kt[..., None])[..., 0])                        # β_t (v_t − S k_t)
        S = S + u[..., :, None] * kt[..., None, :]
        outs.append((S @ q[..., t, :, None])[..., 0])
    return torch.stack(outs, dim=-2), S


def delta_rule_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                       chunk: int = 64,
                       state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The delta rule over chunks with the WY representation of the product of Householders.

    Inside a chunk, ``W = T K`` and ``U = T V`` with
    ``T = (I + tril(diag(β) K Kᵀ, −1))⁻¹ diag(β)`` (a unit-lower-triangular solve); then
    ``O = Q Sᵀ + tril(Q Kᵀ)(U − W Sᵀ)`` and ``S ← S + (U − W Sᵀ)ᵀ K``.

    Parameters
    ----------
    q, k, v, beta, state : torch.Tensor
        As for :func:`delta_rule_recurrent`.
    chunk : int
        Tokens per chunk (≥ 1).

    Returns
    -------
    tuple of torch.Tensor
        ``(o, final state)``, equal to :func:`delta_rule_recurrent`'s.
    """
    chunk = check_positive_int(chunk, "chunk")
    T_len = q.shape[-2]
    S = q.new_zeros(*q.shape[:-2], v.shape[-1], k.shape[-1]) if state is None else state
    outs = []
    for s in range(0, T_len, chunk):
        sl = slice(s, min(T_len, s + chunk))
        Q, K, V, b = q[..., sl, :], k[..., sl, :], v[..., sl, :], beta[..., sl]
        n = K.shape[-2]
        A = torch.eye(n, dtype=K.dtype, device=K.device) + torch.tril(
            b[..., :, None] * (K @ K.transpose(-1, -2)), diagonal=-1)
        W = torch.linalg.solve_triangular(A, b[..., None] * K, upper=False, unitriangular=True)
        U = torch.linalg.solve_triangular(A, b[..., None] * V, upper=False, unitriangular=True)
        R = U - W @ S.transpose(-1, -2)                                     # (n, d_v)
        outs.append(Q @ S.transpose(-1, -2) + torch.tril(Q @ K.transpose(-1, -2)) @ R)
        S = S + R.transpose(-1, -2) @ K
    return torch.cat(outs, dim=-2), S


def _flatten_products(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Interleave DeltaProduct's ``n`` micro-steps per token into a delta-rule sequence.

    Queries are placed at each token's last micro-step (zero elsewhere), so the outputs there
    are the DeltaProduct outputs.
    """
    *lead, T, n, dk = k.shape
    qq = q.new_zeros(*lead, T, n, dk)
    qq[..., -1, :] = q
    return (qq.reshape(*lead, T * n, dk), k.reshape(*lead, T * n, dk),
            v.reshape(*lead, T * n, v.shape[-1]), beta.reshape(*lead, T * n))


def delta_product_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                            beta: torch.Tensor,
                            state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """DeltaProduct: ``n`` delta-rule steps per token, ``S_t = S_{t-1} Π_j (I − β_j k_j k_jᵀ) + …``.

    ``β ∈ (0, 2)`` allows reflections (negative eigenvalues).

    Parameters
    ----------
    q, state : torch.Tensor
        As for :func:`delta_rule_recurrent`.
    k : torch.Tensor
        Keys ``(..., T, n, d_k)``, ``n`` micro-steps per token.
    v : torch.Tensor
        Values ``(..., T, n, d_v)``.
    beta : torch.Tensor
        Write strengths ``(..., T, n)``.

    Returns
    -------
    tuple of torch.Tensor
        ``(o (..., T, d_v), final state (..., d_v, d_k))``.
    """
    S = q.new_zeros(*q.shape[:-2], v.shape[-1], k.shape[-1]) if state is None else state
    outs = []
    for t in range(q.shape[-2]):
        for j in range(k.shape[-2]):
            kt, vt, bt = k[..., t, j, :], v[..., t, j, :], beta[..., t, j, None]
            u = bt * (vt - (S @ kt[..., None])[..., 0])
            S = S + u[..., :, None] * kt[..., None, :]
        outs.append((S @ q[..., t, :, None])[..., 0])
    return torch.stack(outs, dim=-2), S


def delta_product_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          beta: torch.Tensor, chunk: int = 64,
                          state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """DeltaProduct through :func:`delta_rule_chunked` on the interleaved micro-step sequence.

    Parameters
    ----------
    q, k, v, beta, state : torch.Tensor
        As for :func:`delta_product_recurrent`.
    chunk : int
        Micro-steps per chunk (≥ 1; a token has ``n`` of them).

    Returns
    -------
    tuple of torch.Tensor
        ``(o, final state)``, equal to :func:`delta_product_recurrent`'s.
    """
    n = k.shape[-2]
    o, S = delta_rule_chunked(*_flatten_products(q, k, v, beta), chunk=chunk, state=state)
    return o[..., n - 1::n, :], S
