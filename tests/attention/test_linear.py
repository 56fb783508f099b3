"""SSD and the delta rule: quadratic, recurrent and chunked forms agree; structure; bad input."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from refimpl.attention import (
    delta_product_chunked,
    delta_product_recurrent,
    delta_rule_chunked,
    delta_rule_recurrent,
    ssd_chunked,
    ssd_matrix,
    ssd_quadratic,
    ssd_recurrent,
)


def _ssd_inputs(seed, T, dtype=torch.float64, P=3, N=4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 2, T, P, dtype=dtype, generator=g),
            -torch.rand(2, 2, T, dtype=dtype, generator=g),     # log a ∈ (−1, 0]
            torch.randn(2, 2, T, N, dtype=dtype, generator=g),
            torch.randn(2, 2, T, N, dtype=dtype, generator=g))


def _delta_inputs(seed, T, n=None, dtype=torch.float64, dk=5, dv=4, beta_max=1.0):
    g = torch.Generator().manual_seed(seed)
    extra = () if n is None else (n,)
    q = torch.randn(2, 2, T, dk, dtype=dtype, generator=g)
    k = torch.nn.functional.normalize(torch.randn(2, 2, T, *extra, dk, dtype=dtype, generator=g),
                                      dim=-1)
    v = torch.randn(2, 2, T, *extra, dv, dtype=dtype, generator=g)
    beta = beta_max * torch.rand(2, 2, T, *extra, dtype=dtype, generator=g)
    return q, k, v, beta


@given(T=st.integers(1, 40), chunk=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_ssd_three_forms_agree(T, chunk, seed):
    x, la, B, C = _ssd_inputs(seed, T)
    y_quad = ssd_quadratic(x, la, B, C)
    y_rec, h_rec = ssd_recurrent(x, la, B, C)
    y_chunk, h_chunk = ssd_chunked(x, la, B, C, chunk=chunk)
    torch.testing.assert_close(y_rec, y_quad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(y_chunk, y_quad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(h_chunk, h_rec, rtol=1e-10, atol=1e-10)


def test_ssd_float32_agrees_to_stated_tolerance():
    x, la, B, C = _ssd_inputs(0, 64, torch.float32)
    y = ssd_quadratic(x, la, B, C)
    torch.testing.assert_close(ssd_chunked(x, la, B, C, chunk=16)[0], y, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ssd_recurrent(x, la, B, C)[0], y, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("N", [1, 2, 4])
def test_ssd_matrix_is_causal_and_semiseparable(N):
    _, la, B, C = _ssd_inputs(1, 24, N=N)
    M = ssd_matrix(la, B, C)[0, 0]
    assert torch.all(M.triu(1) == 0)
    # Every submatrix on or below the diagonal has rank ≤ N (N-semiseparable).
    for cut in (6, 12, 18):
        block = M[cut:, :cut]
        assert torch.linalg.matrix_rank(block).item() <= N
    assert torch.linalg.matrix_rank(M[12:, :12]).item() == N  # and generically exactly N


def test_ssd_with_unit_decay_and_identity_maps_is_causal_linear_attention():
    T, N = 10, 4
    x, _, B, C = _ssd_inputs(2, T, N=N)
    y = ssd_quadratic(x, torch.zeros(2, 2, T, dtype=torch.float64), B, C)
    ref = torch.tril(C @ B.transpose(-1, -2)) @ x
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


@given(T=st.integers(1, 40), chunk=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_delta_rule_chunked_equals_recurrent(T, chunk, seed):
    q, k, v, beta = _delta_inputs(seed, T)
    o_rec, S_rec = delta_rule_recurrent(q, k, v, beta)
    o_chunk, S_chunk = delta_rule_chunked(q, k, v, beta, chunk=chunk)
    torch.testing.assert_close(o_chunk, o_rec, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(S_chunk, S_rec, rtol=1e-9, atol=1e-9)


def test_delta_rule_overwrites_values_under_orthonormal_keys():
    # β = 1 and orthonormal keys: the state stores each v_t under k_t exactly, S k_t = v_t,
    # and writing a new value under an old key replaces it.
    dk = 6
    Q = torch.linalg.qr(torch.randn(dk, dk, dtype=torch.float64))[0]
    k = torch.stack([Q[:, 0], Q[:, 1], Q[:, 2], Q[:, 0]])[None, None]
    v = torch.randn(1, 1, 4, 3, dtype=torch.float64)
    _, S = delta_rule_recurrent(torch.zeros(1, 1, 4, dk, dtype=torch.float64), k, v,
                                torch.ones(1, 1, 4, dtype=torch.float64))
    torch.testing.assert_close(S[0, 0] @ Q[:, 0], v[0, 0, 3])
    torch.testing.assert_close(S[0, 0] @ Q[:, 1], v[0, 0, 1])
    torch.testing.assert_close(S[0, 0] @ Q[:, 2], v[0, 0, 2])


@given(T=st.integers(1, 20), n=st.integers(1, 4), chunk=st.integers(1, 16),
       seed=st.integers(0, 2**16))
def test_delta_product_chunked_equals_recurrent(T, n, chunk, seed):
    q, k, v, beta = _delta_inputs(seed, T, n=n, beta_max=2.0)  # β up to 2: reflections
    o_rec, S_rec = delta_product_recurrent(q, k, v, beta)
    o_chunk, S_chunk = delta_product_chunked(q, k, v, beta, chunk=chunk)
    torch.testing.assert_close(o_chunk, o_rec, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(S_chunk, S_rec, rtol=1e-8, atol=1e-8)


def test_delta_product_with_one_step_is_deltanet_and_state_transition_is_householder():
    q, k, v, beta = _delta_inputs(3, 9, n=1)
    torch.testing.assert_close(delta_product_recurrent(q, k, v, beta)[0],
                               delta_rule_recurrent(q, k[..., 0, :], v[..., 0, :],
                                                    beta[..., 0])[0])
    # With zero values the update is S ← S (I − β k kᵀ); β = 2 is a reflection (orthogonal).
    dk = 5
    S0 = torch.randn(1, 1, 3, dk, dtype=torch.float64)
    kk = torch.nn.functional.normalize(torch.randn(1, 1, 1, 2, dk, dtype=torch.float64), dim=-1)
    _, S = delta_product_recurrent(torch.zeros(1, 1, 1, dk, dtype=torch.float64), kk,
                                   torch.zeros(1, 1, 1, 2, 3, dtype=torch.float64),
                                   torch.full((1, 1, 1, 2), 2.0, dtype=torch.float64), state=S0)
    H = [torch.eye(dk, dtype=torch.float64) - 2 * torch.outer(kk[0, 0, 0, j], kk[0, 0, 0, j])
         for j in range(2)]
    torch.testing.assert_close(S[0, 0], S0[0, 0] @ H[0] @ H[1])
    torch.testing.assert_close(H[0] @ H[0].T, torch.eye(dk, dtype=torch.float64))


def test_bad_chunk_sizes_raise():
    x, la, B, C = _ssd_inputs(0, 4)
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        ssd_chunked(x, la, B, C, chunk=0)
    q, k, v, beta = _delta_inputs(0, 4)
    with pytest.raises(TypeError, match="chunk must be an integer"):
        delta_rule_chunked(q, k, v, beta, chunk=2.5)
