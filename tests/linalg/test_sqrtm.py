"""Fast differentiable matrix square root: MTP / MPA forward, Lyapunov backward."""

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.autograd.gradcheck import GradcheckError

from refimpl.linalg import (
    MatrixSqrt,
    solve_lyapunov,
    sqrtm_eigh,
    sqrtm_newton_schulz,
    sqrtm_pade,
    sqrtm_taylor,
)
from refimpl.linalg.sqrtm import pade_coefficients, taylor_coefficients
from refimpl.results import Info

from .linalg_strategies import make_spd, torch_batch


def _spd(n, cond, seed=0, batch=()):
    A = np.stack([make_spd(n, cond, seed + i) for i in range(int(np.prod(batch)) or 1)])
    return torch.as_tensor(A.reshape(*batch, n, n) if batch else A[0])


def test_coefficients():
    c = taylor_coefficients(4)
    np.testing.assert_allclose(c, [1, -1 / 2, -1 / 8, -1 / 16, -5 / 128])
    for M, N in ((2, 2), (4, 3), (6, 6)):
        # Defining property: Q_N * series - P_M = O(z^{M+N+1}).
        p, q = pade_coefficients(M, N)
        series = np.array(taylor_coefficients(M + N))
        prod = np.convolve(q, series)[: M + N + 1]
        np.testing.assert_allclose(prod[: M + 1], p, atol=1e-12)
        np.testing.assert_allclose(prod[M + 1:], 0.0, atol=1e-12)
    p, q = pade_coefficients(6, 6)
    assert np.abs(np.polyval(p[::-1], 0.3) / np.polyval(q[::-1], 0.3) - np.sqrt(0.7)) < 1e-12


def test_forward_accuracy_improves_with_degree_and_pade_beats_taylor():
    A = _spd(10, 20.0)
    ref = sqrtm_eigh(A)
    err = lambda Y: float((Y - ref).norm() / ref.norm())  # noqa: E731
    taylor = [err(sqrtm_taylor(A, K)) for K in (4, 8, 16, 32)]
    pade = [err(sqrtm_pade(A, K)) for K in (2, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(taylor))
    assert all(a > b for a, b in itertools.pairwise(pade))
    # [8/8] costs 8 products and one solve; it beats the degree-32 polynomial (32 products).
    assert pade[-1] < taylor[-1] / 10


def test_numpy_input_and_batches():
    A = make_spd(6, 5.0, 3)
    Y = sqrtm_pade(A, 16)
    assert isinstance(Y, np.ndarray)
    np.testing.assert_allclose(Y @ Y, A, atol=1e-9)
    Ab = _spd(5, 5.0, batch=(2, 3))
    np.testing.assert_allclose(sqrtm_pade(Ab, 16), sqrtm_eigh(Ab), atol=1e-8)


def test_newton_schulz_and_eigh_roots():
    A = make_spd(9, 100.0, 6)
    for Y in (sqrtm_eigh(A), sqrtm_newton_schulz(A, 30)):
        np.testing.assert_allclose(Y @ Y, A, atol=1e-10)
        np.testing.assert_allclose(Y, Y.T, atol=1e-10)
    np.testing.assert_allclose(sqrtm_eigh(A), scipy.linalg.sqrtm(A).real, atol=1e-10)
    # too few Newton–Schulz steps for this conditioning: visibly inaccurate
    assert np.abs(sqrtm_newton_schulz(A, 3) @ sqrtm_newton_schulz(A, 3) - A).max() > 1e-3


def test_solve_lyapunov():
    Y = sqrtm_eigh(_spd(7, 100.0, 1))
    G = torch.randn(7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    X = solve_lyapunov(Y, G)
    assert float((Y @ X + X @ Y - G).norm()) < 1e-10
    Xn = solve_lyapunov(Y.numpy(), G.numpy())
    assert isinstance(Xn, np.ndarray)
    np.testing.assert_allclose(Xn, X.numpy(), atol=1e-12)


def test_solve_lyapunov_info():
    Y = sqrtm_eigh(_spd(7, 100.0, 1))
    G = torch.eye(7, dtype=torch.float64)
    X, info = solve_lyapunov(Y, G, return_info=True)
    torch.testing.assert_close(X, solve_lyapunov(Y, G))
    assert isinstance(info, Info) and info.converged and len(info.errors) == info.n_iter
    # errors[k] = ‖B_k² − I‖_F of the iterate step k started from: the stopping measure,
    # decreasing to below the default tol 100 n eps.
    assert info.errors[-1] <= 100 * 7 * np.finfo(np.float64).eps < min(info.errors[:-1])
    assert all(b < a for a, b in zip(info.errors[-4:], info.errors[-3:], strict=False))
    _, short = solve_lyapunov(Y, G, max_iter=3, return_info=True)
    assert short == Info(3, False, info.errors[:3])


def test_solve_lyapunov_bad_input():
    Y = np.eye(3)
    with pytest.raises(ValueError, match="G must have 3 rows"):
        solve_lyapunov(Y, np.eye(4))
    with pytest.raises(ValueError, match="G must be square"):
        solve_lyapunov(Y, np.ones((3, 2)))
    with pytest.raises(TypeError, match="G is a torch tensor"):
        solve_lyapunov(Y, torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="Y must be square"):
        solve_lyapunov(np.ones((3, 2)), np.eye(3))
    with pytest.raises(ValueError, match="max_iter"):
        solve_lyapunov(Y, Y, max_iter=0)
    # An upstream gradient may carry Inf under loss scaling: it is passed through.
    Yt = torch.eye(3, dtype=torch.float64)
    assert not solve_lyapunov(Yt, torch.full((3, 3), float("inf"))).isfinite().any()


@pytest.mark.parametrize("method, degree", [("pade", 10), ("taylor", 60)])
def test_gradcheck_float64(method, degree):
    A = _spd(5, 4.0, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: MatrixSqrt.apply(a, method, degree), (A,),
                                    eps=1e-6, atol=1e-5, rtol=1e-3)
    Ab = _spd(4, 4.0, 5, batch=(2,)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: MatrixSqrt.apply(a, method, degree), (Ab,),
                                    eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("degree, bound", [(8, 1e-2), (16, 1e-4)])
def test_backward_matches_autograd_through_eigh(degree, bound):
    # torch.linalg.eigh treats A as symmetric, so its gradient is the symmetric part of the
    # general one; ours solves Y X + X Y = G for any G. The gap shrinks with the forward's
    # accuracy, because the backward uses the approximate Y.
    A = _spd(8, 10.0, 4)
    G = torch.randn(8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a1 = A.clone().requires_grad_(True)
    (MatrixSqrt.apply(a1, "pade", degree) * G).sum().backward()
    a2 = A.clone().requires_grad_(True)
    (sqrtm_eigh(a2) * G).sum().backward()
    ours = (a1.grad + a1.grad.mT) / 2
    rel = float((ours - a2.grad).norm() / a2.grad.norm())
    assert rel < bound


def test_wrong_backward_would_fail_gradcheck():
    # The check can fail: a backward that forgets the Lyapunov structure (X = G/2 Y^{-1}).
    A = _spd(4, 4.0, 2).requires_grad_(True)

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            y = sqrtm_pade(a, 10)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g @ torch.linalg.inv(y) / 2

    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(Wrong.apply, (A,), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        sqrtm_pade(np.ones((2, 3)))
    with pytest.raises(TypeError, match="A"):
        sqrtm_taylor(np.eye(2, dtype=int))
    with pytest.raises(ValueError, match="method"):
        MatrixSqrt.apply(torch.eye(2, dtype=torch.float64), "svd", 4)
    with pytest.raises(ValueError, match="degree"):
        sqrtm_taylor(np.eye(2), -1)
    with pytest.raises(TypeError, match="degree"):
        sqrtm_pade(np.eye(2), (2, 1.5))
    with pytest.raises(ValueError, match="iters"):
        sqrtm_newton_schulz(np.eye(2), -1)
    with pytest.raises(ValueError, match="A must have 2 dimensions"):
        sqrtm_eigh(np.ones((2, 2, 2)))


def test_float32_in_float32_out():
    A = make_spd(6, 5.0, 3, dtype=np.float32)
    for fn in (sqrtm_taylor, sqrtm_pade, sqrtm_eigh, sqrtm_newton_schulz):
        assert fn(A).dtype == np.float32
        assert fn(torch.as_tensor(A)).dtype == torch.float32


@pytest.mark.gpu
def test_matrix_sqrt_backward_cuda():
    A = torch_batch(m=24, n=6)
    S = (A.mT @ A / 24 + 0.5 * torch.eye(6, dtype=torch.float64)).cuda().requires_grad_(True)
    (MatrixSqrt.apply(S, "pade", 16).sum()).backward()
    assert S.grad.device.type == "cuda"
    S2 = S.detach().clone().requires_grad_(True)
    sqrtm_eigh(S2).sum().backward()
    torch.testing.assert_close(S.grad, S2.grad, atol=1e-6, rtol=0)
