"""The adapters' initial factors from the pretrained weight (refimpl.lora.factors): PiSSA
exact and randomized, OLoRA's dependence on α, CorDA's exact reconstruction and damping, NLoRA's
Nyström factors."""

import pytest
import torch

from refimpl import lora


def test_randomized_pissa_close_to_exact():
    W = torch.randn(40, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    W = W @ torch.diag(0.5 ** torch.arange(30.0, dtype=torch.float64))
    A1, B1, _ = lora.pissa_factors(W, 4, 1.0)
    A2, B2, _ = lora.pissa_factors(W, rank=4, s=1.0, svd="randomized", n_iter=4, seed=0)
    assert A1.dtype == B1.dtype == torch.float64  # computed and returned in W's precision
    torch.testing.assert_close(B2 @ A2, B1 @ A1, rtol=1e-4, atol=1e-4)
    A3, B3, W3 = lora.pissa_factors(W, 4, 1.0, svd="exact")
    assert torch.equal(A3, A1) and torch.equal(B3, B1)
    torch.testing.assert_close(W3 + B3 @ A3, W)
    with pytest.raises(ValueError, match="svd must be one of"):
        lora.pissa_factors(W, 4, 1.0, svd="full")
    with pytest.raises(ValueError, match="largest"):
        lora.pissa_factors(W, 4, 1.0, svd="randomized", smallest=True)
    with pytest.raises(ValueError, match="rank=31 exceeds"):
        lora.pissa_factors(W, 31, 1.0)


def test_olora_residual_depends_on_alpha_pissa_does_not_change_output():
    W = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    _, _, r1 = lora.olora_factors(W, 2, 1.0)
    _, _, r2 = lora.olora_factors(W, rank=2, s=2.0)
    assert not torch.allclose(r1, r2)
    p1 = lora.pissa_factors(W, 2, 1.0)[2]
    p2 = lora.pissa_factors(W, 2, 2.0)[2]
    torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)


def test_corda_reconstructs_w_exactly_and_damps():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 5, generator=g, dtype=torch.float64)
    X = torch.randn(3, 5, generator=g, dtype=torch.float64)  # rank-deficient covariance
    C = X.T @ X / 3
    Cd, Ci = lora.corda_damped_covariance(C)
    assert torch.dist(Cd @ Ci, torch.eye(5, dtype=Cd.dtype)) < 0.05
    *_, Wr = lora.corda_factors(W, C, rank=5, s=1.0)  # all triplets: the residual vanishes
    torch.testing.assert_close(Wr, torch.zeros_like(Wr), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="mode"):
        lora.corda_factors(W, C, 2, 1.0, mode="xyz")
    with pytest.raises(ValueError, match="square"):
        lora.corda_damped_covariance(torch.ones(3, 4))


def test_nystrom_factors_are_exact_at_full_rank():
    W = torch.randn(8, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    A, N, B, Wr = lora.nystrom_factors(W, rank=5, s=2.0)
    assert Wr.dtype == torch.float64  # computed and returned in W's precision
    torch.testing.assert_close(Wr, torch.zeros_like(Wr), rtol=0, atol=1e-9)
    torch.testing.assert_close(2.0 * B @ N @ A, W, rtol=1e-9, atol=1e-9)
