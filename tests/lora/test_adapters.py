"""The adapter mechanism for every method: step-0 invariance, parameter counts, merge/unmerge,
save/load, where gradients flow, bad configurations."""

import copy
import math

import pytest
import torch
from lora_models import Tiny, batch
from torch import nn

from refimpl import lora

TARGETS = ["q", "v", "fc"]
SHAPES = {"q": (12, 12), "v": (12, 12), "fc": (20, 12)}  # (d_out, d_in)
R = 3


def _mpo_count(o, i, n, bond):
    """Σ_k χ_{k−1} o_k i_k χ_k for the TT-SVD bond dimensions of :func:`lora.mpo_decompose`."""
    om, im = lora.mpo_modes(o, n), lora.mpo_modes(i, n)
    dims = [a * b for a, b in zip(om, im, strict=True)]
    chis = [1] + [min(bond, math.prod(dims[:k + 1]), math.prod(dims[k + 1:]))
                  for k in range(n - 1)] + [1]
    return sum(chis[k] * dims[k] * chis[k + 1] for k in range(n))


def _banded(n, w):
    return n * (2 * w + 1) - w * (w + 1)


# (config, trainable parameters per layer as a function of (d_out, d_in), exact at step 0)
METHODS = {
    "lora": (lora.LoRAConfig(rank=R, alpha=4), lambda o, i: R * (i + o), True),
    "rslora": (lora.LoRAConfig(rank=R, rslora=True), lambda o, i: R * (i + o), True),
    "pissa": (lora.LoRAConfig(rank=R, init="pissa"), lambda o, i: R * (i + o), True),
    "pissa_rsvd": (lora.LoRAConfig(rank=R, init="pissa_rsvd"), lambda o, i: R * (i + o), True),
    "milora": (lora.LoRAConfig(rank=R, alpha=2, init="milora"), lambda o, i: R * (i + o), True),
    "olora": (lora.LoRAConfig(rank=R, alpha=5, init="olora"), lambda o, i: R * (i + o), True),
    "corda_ipm": (lora.LoRAConfig(rank=R, init="corda_ipm"), lambda o, i: R * (i + o), True),
    "corda_kpm": (lora.LoRAConfig(rank=R, init="corda_kpm"), lambda o, i: R * (i + o), True),
    "slora": (lora.NLoRAConfig(rank=R), lambda o, i: R * (i + o) + R * R, True),
    "nlora": (lora.NLoRAConfig(rank=R, init="nlora"), lambda o, i: R * (i + o) + R * R, True),
    "inttune": (lora.NLoRAConfig(rank=R, init="inttune"), lambda o, i: R * R, True),
    "dora": (lora.DoRAConfig(rank=R), lambda o, i: R * (i + o) + o, True),
    "dora_dense": (lora.DoRAConfig(rank=R, norm="dense"), lambda o, i: R * (i + o) + o, True),
    "edora": (lora.EDoRAConfig(rank=R), lambda o, i: R * R + o, True),
    "vera": (lora.VeRAConfig(rank=R), lambda o, i: R + o, True),
    "svfit": (lora.SVFitConfig(rank=R), lambda o, i: R, True),
    "svft_diag": (lora.SVFTConfig(pattern="diagonal"), lambda o, i: min(o, i), True),
    "svft_band": (lora.SVFTConfig(pattern="banded", width=2),
                  lambda o, i: _banded(min(o, i), 2), True),
    "svft_random": (lora.SVFTConfig(pattern="random", k=7), lambda o, i: min(o, i) + 7, True),
    "qrlora": (lora.QRLoRAConfig(rank=R), lambda o, i: R, True),
    "curlora": (lora.CURLoRAConfig(rank=R), lambda o, i: R * R, True),
    "lqlora": (lora.LQLoRAConfig(rank=R, bits=4, block=16), lambda o, i: R * (i + o), False),
    "nora": (lora.NoRAConfig(rank=6, inner_rank=2), lambda o, i: 2 * 6 * 2, True),
    "dota": (lora.DoTAConfig(n_cores=2, bond=3), lambda o, i: _mpo_count(o, i, 2, 3), True),
    "dota3": (lora.DoTAConfig(n_cores=3, bond=2), lambda o, i: _mpo_count(o, i, 3, 2), True),
    "flora": (lora.FLoRAConfig(rank=R), lambda o, i: R * (i + o) + R * R, True),
    "blocklora": (lora.BlockLoRAConfig(rank=R, n_blocks=3), lambda o, i: R * (i // 3 + o), True),
    # q, v: 12 = 3·4 both ways; fc: 20 = 4·5 rows, 12 = 3·4 columns
    "riemann": (lora.RiemannLoRAConfig(rank=R), lambda o, i: R * R + R * (i + o), True),
    "soka": (lora.SoKAConfig(rank=2), lambda o, i: 2 * (lora.kron_shape(o)[0] * lora.kron_shape(
        i)[0] + lora.kron_shape(o)[1] * lora.kron_shape(i)[1]), True),
}


def _wrapped(name, base=None):
    base = Tiny() if base is None else base
    cfg = METHODS[name][0]
    cov = lora.input_covariances(base, TARGETS, [batch(40, seed=9)]) \
        if name.startswith("corda") else None
    return base, lora.wrap(copy.deepcopy(base), TARGETS, cfg, covariances=cov)


def _perturb(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("name", list(METHODS))
def test_step0_count_merge_save_grads(name, tmp_path):
    base, model = _wrapped(name)
    x = batch()
    # step-0 invariance (LQ-LoRA: up to its quantization error)
    tol = 2e-5 if METHODS[name][2] else 0.2
    torch.testing.assert_close(model(x), base(x), rtol=tol, atol=tol)
    # parameter count = the method's formula
    per_layer = METHODS[name][1]
    assert lora.trainable_parameters(model) == sum(per_layer(*SHAPES[n]) for n in TARGETS)
    # the untouched layer and all base weights are frozen
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(".base." in n or n.startswith("head") for n in trainable)
    # gradients only on the adapters
    _perturb(model)
    model(x).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    # merge / unmerge round trip
    before = model(x).detach()
    weights = {n: layer.base.weight.clone() for n, layer in lora.adapter_layers(model).items()}
    lora.merge(model)
    assert all(layer.merged for layer in lora.adapter_layers(model).values())
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    lora.unmerge(model)
    for n, layer in lora.adapter_layers(model).items():
        torch.testing.assert_close(layer.base.weight, weights[n], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    # save / load round trip into a freshly wrapped model
    path = tmp_path / "adapter.safetensors"
    lora.save_adapter(model, path)
    _, fresh = _wrapped(name, base)
    assert not torch.allclose(fresh(x), before)
    lora.load_adapter(fresh, path)
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)


def test_delta_weight_is_what_the_forward_adds():
    for name in ("lora", "slora", "vera", "svfit", "svft_band", "qrlora", "curlora", "blocklora",
                 "flora", "dota3"):
        _, model = _wrapped(name)
        _perturb(model, 1)
        x = batch()
        for layer in lora.adapter_layers(model).values():
            got = layer(x) - layer.base(x)
            torch.testing.assert_close(got, x @ layer.delta_weight().T, rtol=1e-5, atol=1e-5)


def test_safe_merge_refuses_non_finite():
    _, model = _wrapped("lora")
    layer = lora.adapter_layers(model)["fc"]
    with torch.no_grad():
        layer.lora_B.fill_(3e38)
        layer.lora_A.fill_(3e38)
    w = {n: m.base.weight.clone() for n, m in lora.adapter_layers(model).items()}
    with pytest.raises(ValueError, match="NaN or Inf"):
        lora.merge(model)
    for n, m in lora.adapter_layers(model).items():
        assert not m.merged
        assert torch.equal(m.base.weight, w[n])
    with pytest.raises(ValueError, match="NaN or Inf"):
        layer.safe_merge()
    layer.merge(safe=False)  # an explicit unsafe merge is allowed
    assert not torch.isfinite(layer.base.weight).all()


def test_non_residual_methods_leave_base_weights_alone():
    for name in ("lora", "dora", "vera", "curlora", "edora", "slora", "qrlora", "svft_diag"):
        base, model = _wrapped(name)
        for n, layer in lora.adapter_layers(model).items():
            assert torch.equal(layer.base.weight, getattr(base, n).weight), (name, n)


def test_pissa_milora_use_opposite_ends_of_the_spectrum():
    base = Tiny()
    for init, end in (("pissa", 0), ("milora", -1)):
        model = lora.wrap(copy.deepcopy(base), ["fc"], lora.LoRAConfig(rank=2, init=init))
        layer = lora.adapter_layers(model)["fc"]
        s = torch.linalg.svdvals(base.fc.weight)
        got = torch.linalg.svdvals(layer.delta_weight())[:2]
        want = s[:2] if end == 0 else s[-2:]
        torch.testing.assert_close(got.sort(descending=True).values, want, rtol=1e-4, atol=1e-5)


def test_randomized_pissa_close_to_full():
    W = torch.randn(40, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    W = W @ torch.diag(0.5 ** torch.arange(30.0, dtype=torch.float64))
    A1, B1, _ = lora.pissa_factors(W, 4, 1.0)
    A2, B2, _ = lora.pissa_factors(W, 4, 1.0, svd="randomized", n_iter=4, seed=0)
    torch.testing.assert_close(B2 @ A2, (B1 @ A1).float(), rtol=1e-4, atol=1e-4)


def test_olora_residual_depends_on_alpha_pissa_does_not_change_output():
    W = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    _, _, r1 = lora.olora_factors(W, 2, 1.0)
    _, _, r2 = lora.olora_factors(W, 2, 2.0)
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
    *_, Wr = lora.corda_factors(W, C, 5, 1.0)  # all triplets: the residual vanishes
    torch.testing.assert_close(Wr, torch.zeros_like(Wr), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="mode"):
        lora.corda_factors(W, C, 2, 1.0, mode="xyz")


def test_vera_shares_projections_across_layers():
    _, model = _wrapped("vera")
    layers = lora.adapter_layers(model)
    assert torch.equal(layers["q"].vera_A, layers["fc"].vera_A)
    assert torch.equal(layers["fc"].vera_B[:12], layers["q"].vera_B)


def test_svft_pattern_counts():
    for n, w in ((7, 0), (7, 1), (7, 3), (12, 2)):
        rows, _ = lora.svft_pattern(n, "banded", width=w)
        assert len(rows) == _banded(n, w)
    U = torch.linalg.qr(torch.randn(6, 6))[0]
    r, c = lora.svft_pattern(6, "topk", k=5, U=U, Vh=U.T)
    assert len(set(zip(r.tolist(), c.tolist(), strict=True))) == 11
    with pytest.raises(ValueError, match="square"):
        lora.svft_pattern(4, "topk", k=2, U=torch.eye(5)[:, :4], Vh=torch.eye(4))


def test_energy_rank_and_curlora_sampling():
    assert lora.energy_rank(torch.tensor([3.0, 2.0, 1.0, 0.1]), 0.9) == 2
    assert lora.energy_rank(torch.tensor([3.0, 2.0, 1.0, 0.1]), 1.0) == 4
    W = torch.ones(50, 40)
    W[:25] *= 100.0  # high-energy rows are rarely drawn under inverted probabilities
    rows, cols = lora.curlora_indices(W, 10, seed=0)
    assert len(set(rows.tolist())) == 10 and len(set(cols.tolist())) == 10
    assert (rows >= 25).all()


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="exceeds"):
        lora.wrap(Tiny(), ["q"], lora.LoRAConfig(rank=13))
    with pytest.raises(ValueError, match="matches no module"):
        lora.wrap(Tiny(), ["k_proj"], lora.LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="matches no module"):
        lora.wrap(Tiny(), r"layers\.\d+", lora.LoRAConfig(rank=2))
    m = Tiny()
    m.q.weight = nn.Parameter(m.q.weight.data.to(torch.int32), requires_grad=False)
    with pytest.raises(TypeError, match="non-float"):
        lora.wrap(m, ["q"], lora.LoRAConfig(rank=2))
    seq = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(TypeError, match=r"nn\.Linear, nn\.Embedding and nn\.Conv2d"):
        lora.wrap(seq, ["1"], lora.LoRAConfig(rank=2))
    emb = nn.Sequential(nn.Embedding(10, 4))
    with pytest.raises(TypeError, match=r"only nn\.Linear"):
        lora.wrap(emb, ["0"], lora.DoRAConfig(rank=2))
    with pytest.raises(ValueError, match="embedding"):
        lora.wrap(emb, ["0"], lora.LoRAConfig(rank=2, init="pissa"))
    with pytest.raises(ValueError, match="init"):
        lora.LoRAConfig(init="gaussian")
    with pytest.raises(ValueError, match="alpha"):
        lora.LoRAConfig(alpha=-1)
    with pytest.raises(ValueError, match="matches no module"):
        lora.input_covariances(Tiny(), r"nothing\..*", [batch()])
    with pytest.raises(ValueError, match="CorDA needs covariances"):
        lora.wrap(Tiny(), ["q"], lora.LoRAConfig(rank=2, init="corda_ipm"))
    with pytest.raises(ValueError, match="pattern"):
        lora.SVFTConfig(pattern="zigzag")
    model = lora.wrap(Tiny(), ["q"], lora.LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="already adapted"):
        lora.wrap(model, ["q"], lora.LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="no adapter layers"):
        lora.merge(Tiny())


def test_load_refuses_mismatched_files(tmp_path):
    _, model = _wrapped("lora")
    lora.save_adapter(model, tmp_path / "a.safetensors")
    other = lora.wrap(Tiny(), ["q", "v"], lora.LoRAConfig(rank=R))
    with pytest.raises(ValueError, match="holds layers"):
        lora.load_adapter(other, tmp_path / "a.safetensors")
    bigger = lora.wrap(Tiny(), TARGETS, lora.LoRAConfig(rank=R + 1))
    with pytest.raises(ValueError, match="shape"):
        lora.load_adapter(bigger, tmp_path / "a.safetensors")
    _, dora = _wrapped("dora")
    with pytest.raises(ValueError, match="holds layers"):
        lora.load_adapter(dora, tmp_path / "a.safetensors")
    lora.merge(model)
    with pytest.raises(RuntimeError, match="unmerge"):
        lora.save_adapter(model, tmp_path / "b.safetensors")


@pytest.mark.parametrize("name", ["lora", "nlora", "dora", "edora", "vera", "svft_band",
                                  "qrlora", "curlora", "blocklora"])
def test_leading_batch_dimensions(name):
    _, model = _wrapped(name)
    _perturb(model, 2)
    x = torch.randn(2, 3, 12, generator=torch.Generator().manual_seed(4))
    layer = lora.adapter_layers(model)["fc"]
    torch.testing.assert_close(layer(x), layer(x.reshape(6, 12)).reshape(2, 3, 20))
    torch.testing.assert_close(layer(x.transpose(0, 1)), layer(x).transpose(0, 1))


def test_lotr_shares_factors_across_layers(tmp_path):
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["q", "v"], lora.LoTRConfig(rank=R))
    layers = lora.adapter_layers(model)
    assert layers["q"].lotr_A is layers["v"].lotr_A and layers["q"].lotr_B is layers["v"].lotr_B
    assert lora.trainable_parameters(model) == R * (12 + 12) + 2 * R * R
    x = batch()
    torch.testing.assert_close(model(x), base(x), rtol=0, atol=0)
    _perturb(model)
    before = model(x).detach()
    lora.merge(model)
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    lora.unmerge(model)
    lora.save_adapter(model, tmp_path / "lotr.safetensors")
    fresh = lora.wrap(copy.deepcopy(base), ["q", "v"], lora.LoTRConfig(rank=R))
    lora.load_adapter(fresh, tmp_path / "lotr.safetensors")
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)
    assert fresh.q.lotr_A is fresh.v.lotr_A  # loading keeps the sharing
    with pytest.raises(ValueError, match="one shape"):
        lora.wrap(Tiny(), ["q", "fc"], lora.LoTRConfig(rank=R))


def test_kron_svd_is_exact_at_full_rank_and_optimal_truncated():
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(3, 4, generator=g), torch.randn(5, 2, generator=g)
    W = torch.kron(A, B) + 0.01 * torch.randn(15, 8, generator=g)
    full = lora.kron_svd(W, 3, 4)
    torch.testing.assert_close(full.reconstruct(), W, rtol=1e-5, atol=1e-5)
    one = lora.kron_svd(W, 3, 4, 1)
    err = (W - one.reconstruct()).norm()
    assert err <= (W - torch.kron(A, B)).norm() + 1e-6  # nearest single Kronecker product
    torch.testing.assert_close(err.square(), full.s[1:].square().sum(), rtol=1e-4, atol=1e-6)
    assert lora.kron_shape(20) == (4, 5) and lora.kron_shape(13) == (1, 13)
    with pytest.raises(ValueError, match="divide"):
        lora.kron_svd(W, 4, 4)


def test_lora_dropout_acts_on_the_adapter_input_in_training_only():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.LoRAConfig(rank=R, dropout=0.5))
    plain = lora.wrap(copy.deepcopy(base), ["fc"], lora.LoRAConfig(rank=R))
    _perturb(model, 5)
    _perturb(plain, 5)
    x = batch()
    model.eval()
    torch.testing.assert_close(model(x), plain(x))
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(x), plain(x))
    with pytest.raises(ValueError, match="dropout"):
        lora.LoRAConfig(dropout=1.0)


def test_block_lora_is_lora_with_a_repeated_down_block():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.BlockLoRAConfig(rank=2, n_blocks=4,
                                                                        alpha=3))
    layer = lora.adapter_layers(model)["fc"]
    assert layer.block_A.shape == (2, 3) and layer.block_B.shape == (20, 2)
    _perturb(model, 6)
    ref = lora.wrap(copy.deepcopy(base), ["fc"], lora.LoRAConfig(rank=2, alpha=3))
    lora.adapter_layers(ref)["fc"].set_factors(layer.block_A.detach().repeat(1, 4),
                                               layer.block_B.detach())
    x = batch()
    torch.testing.assert_close(model(x), ref(x), rtol=1e-5, atol=1e-6)
    assert torch.linalg.matrix_rank(layer.delta_weight()) == 2
    with pytest.raises(ValueError, match="must divide"):
        lora.wrap(Tiny(), ["fc"], lora.BlockLoRAConfig(rank=2, n_blocks=5))


def test_mpo_decomposition_exact_truncated_and_kronecker():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(20, 12, generator=g, dtype=torch.float64)
    assert lora.mpo_modes(20, 2) == (5, 4) and lora.mpo_modes(12, 3) == (3, 2, 2)
    assert lora.mpo_modes(7, 3) == (7, 1, 1)
    for n in (2, 3):
        cores = lora.mpo_decompose(W, lora.mpo_modes(20, n), lora.mpo_modes(12, n))
        torch.testing.assert_close(lora.mpo_to_matrix(cores), W)
    # two cores with bond k: the nearest sum of k Kronecker products (Van Loan–Pitsianis)
    cores = lora.mpo_decompose(W, (5, 4), (4, 3), bond=2)
    torch.testing.assert_close(lora.mpo_to_matrix(cores), lora.kron_svd(W, 5, 4, 2).reconstruct())
    # three cores: the error obeys the TT-SVD bound
    cores = lora.mpo_decompose(W, (5, 2, 2), (3, 2, 2), bond=3)
    err = torch.dist(lora.mpo_to_matrix(cores), W)
    T = W.reshape(5, 2, 2, 3, 2, 2).permute(0, 3, 1, 4, 2, 5)  # (o₁, i₁, o₂, i₂, o₃, i₃)
    bound = sum(torch.linalg.svdvals(T.reshape(rows, -1))[3:].square().sum() for rows in (15, 60))
    assert 0 < err <= bound.sqrt() + 1e-9
    with pytest.raises(ValueError, match="multiply"):
        lora.mpo_decompose(W, (5, 4), (3, 3))


def test_dota_residual_and_full_bond():
    base = Tiny()
    model = lora.wrap(copy.deepcopy(base), ["fc"], lora.DoTAConfig(n_cores=2, bond=100))
    layer = lora.adapter_layers(model)["fc"]
    # at full bond the cores hold all of W and the frozen residual vanishes
    torch.testing.assert_close(layer.base.weight, torch.zeros(20, 12), rtol=0, atol=1e-5)
    torch.testing.assert_close(layer.delta_weight(), base.fc.weight, rtol=1e-5, atol=1e-5)
    x = batch()
    torch.testing.assert_close(model(x), base(x), rtol=1e-5, atol=1e-5)
