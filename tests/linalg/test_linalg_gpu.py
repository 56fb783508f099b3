"""The torch paths of refimpl.linalg on CUDA agree with the CPU (skipped without CUDA)."""

import pytest
import torch

from refimpl.linalg import MatrixSqrt, cholesky, householder_qr, polar, sqrtm_eigh, truncated_svd

pytestmark = pytest.mark.gpu


def _batch(b=3, m=12, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, m, n, dtype=torch.float64, generator=g)


def test_householder_qr_cuda_matches_cpu():
    A = _batch()
    Q, R = householder_qr(A.cuda())
    assert Q.device.type == "cuda"
    Qc, Rc = householder_qr(A)
    torch.testing.assert_close(Q.cpu(), Qc, atol=1e-10, rtol=0)
    torch.testing.assert_close(R.cpu(), Rc, atol=1e-10, rtol=0)


@pytest.mark.parametrize("method", ["svd", "newton_schulz"])
def test_polar_cuda_matches_cpu(method):
    A = _batch()
    U, H = polar(A.cuda(), method=method)
    Uc, Hc = polar(A, method=method)
    torch.testing.assert_close(U.cpu(), Uc, atol=1e-9, rtol=0)
    torch.testing.assert_close(H.cpu(), Hc, atol=1e-9, rtol=0)


def test_truncated_svd_and_cholesky_cuda():
    A = _batch()
    t = truncated_svd(A.cuda(), 3)
    torch.testing.assert_close(t.error().cpu(), truncated_svd(A, 3).error(), atol=1e-10, rtol=0)
    S = A.mT @ A + torch.eye(8, dtype=torch.float64)
    L = cholesky(S.cuda()).L
    torch.testing.assert_close((L @ L.mT).cpu(), S, atol=1e-10, rtol=0)


def test_matrix_sqrt_backward_cuda():
    A = _batch(m=24, n=6)
    S = (A.mT @ A / 24 + 0.5 * torch.eye(6, dtype=torch.float64)).cuda().requires_grad_(True)
    (MatrixSqrt.apply(S, "pade", 16).sum()).backward()
    S2 = S.detach().clone().requires_grad_(True)
    sqrtm_eigh(S2).sum().backward()
    torch.testing.assert_close(S.grad, S2.grad, atol=1e-6, rtol=0)
