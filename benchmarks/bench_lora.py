"""LoRA and DoRA layers against Hugging Face PEFT, and the memory of DoRA's factored norm.

1. Time: forward + backward of one adapted ``nn.Linear`` (loss = sum of squares of the
   output) for refimpl's ``LoRALinear`` / ``DoRALinear`` and PEFT's LoRA / DoRA layer at the
   same configuration, weights and factors (B ≠ 0), in the same process; median of repeats,
   the two timed alternately (ours, peer, ours, ...) so that load from other processes on the
   shared machine falls on both alike.
   The outputs of the two are compared (``max_rel_diff``).
2. Memory: the transient memory of the DoRA weight norm ``‖W + sBA‖`` per output feature at
   d_in = d_out = 4096, r = 384, fp32 on the CPU: the factored form (never forms ``BA``) vs the
   dense form, and one no-grad forward of refimpl's ``DoRALinear`` vs PEFT's DoRA layer on 8
   tokens. Measured with torch's CPU memory profiler (``torch.profiler.profile(
   profile_memory=True)``): the peak of the running sum of the bytes each operator allocates
   and frees, i.e. the peak of memory allocated inside the call above what existed before it.

CPU fp32 with one torch thread by default (the reference machine's two cores are shared; with
two threads the medians swing by several times between runs). Under
``torch.cuda.is_available()`` the timings run on the GPU in bf16 with synchronisation (not run
on the reference machine); the result file names the device.
"""

from __future__ import annotations

import copy
import statistics

import torch
from torch import nn

from benchmarks._common import write_result
from refimpl import lora
from refimpl.experiments import cpu_peak_memory, median_time


def _setup():
    if torch.cuda.is_available():  # GPU path (bf16); not exercised on the CPU reference machine
        return "cuda", torch.bfloat16, torch.cuda.synchronize, torch.cuda.get_device_name()
    torch.set_num_threads(1)
    return "cpu", torch.float32, None, "cpu"


def _pair(d, r, dora, device, dtype):
    import peft

    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(d, d)).to(device=device, dtype=dtype)
    cfg = (lora.DoRAConfig if dora else lora.LoRAConfig)(rank=r, alpha=2 * r)
    ours = lora.wrap(copy.deepcopy(base), ["0"], cfg)
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=r, lora_alpha=2 * r, target_modules=["0"], use_dora=dora))
    layer = lora.adapter_layers(ours)["0"]
    peft_layer = theirs.base_model.model[0]
    with torch.no_grad():
        B = 0.01 * torch.randn(d, r, device=device, dtype=dtype)
        layer.lora_B.copy_(B)
        peft_layer.lora_B["default"].weight.copy_(B)
        peft_layer.lora_A["default"].weight.copy_(layer.lora_A)
        if dora:
            m = layer.weight_norm() * 1.01
            layer.magnitude.copy_(m)
            peft_layer.lora_magnitude_vector["default"].weight.copy_(m)
    return ours, theirs


def _step(model, x):
    def run():
        model.zero_grad(set_to_none=True)
        y = model(x)
        y.float().square().sum().backward()
    return run


def _alternating(fn_a, fn_b, *, repeats, sync):
    """Medians of ``fn_a`` and ``fn_b`` timed alternately (each run timed alone)."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(median_time(fn_a, repeats=1, warmup=0, sync=sync))
        tb.append(median_time(fn_b, repeats=1, warmup=0, sync=sync))
    return statistics.median(ta), statistics.median(tb)


def _memory_rows():
    d, r, s = 4096, 384, 2.0
    g = torch.Generator().manual_seed(0)
    W = torch.randn(d, d, generator=g) / d**0.5
    A = torch.randn(r, d, generator=g) / d**0.5
    B = torch.randn(d, r, generator=g) * 0.01
    dense = lora.dora_norm_dense(W, A, B, s)
    fact = lora.dora_norm_factored(W, A, B, s)
    cos = float(torch.nn.functional.cosine_similarity(dense, fact, dim=0))
    rel = float(((dense - fact).abs() / dense).max())
    m_dense = cpu_peak_memory(lambda: lora.dora_norm_dense(W, A, B, s))
    m_fact = cpu_peak_memory(lambda: lora.dora_norm_factored(W, A, B, s))
    ours, theirs = _pair(d, r, True, "cpu", torch.float32)
    x = torch.randn(8, d)
    with torch.no_grad():
        diff = float((ours(x) - theirs(x)).abs().max() / theirs(x).abs().max())
        m_ours = cpu_peak_memory(lambda: ours(x))
        m_peft = cpu_peak_memory(lambda: theirs(x))
    mb = 2**20
    return [
        {"case": f"DoRA norm d={d} r={r} fp32: factored vs dense form",
         "ours_mib": m_fact / mb, "peer_mib": m_dense / mb, "ratio": m_fact / m_dense,
         "cosine": cos, "max_rel_diff": rel},
        {"case": f"DoRA layer forward d={d} r={r} fp32, 8 tokens, no grad: refimpl vs PEFT",
         "ours_mib": m_ours / mb, "peer_mib": m_peft / mb, "ratio": m_ours / m_peft,
         "max_rel_diff": diff},
    ]


def main():
    device, dtype, sync, device_name = _setup()
    rows = []
    for dora in (False, True):
        for d, r, tokens in ((1024, 16, 512), (2048, 64, 256)):
            ours, theirs = _pair(d, r, dora, device, dtype)
            x = torch.randn(tokens, d, device=device, dtype=dtype)
            with torch.no_grad():
                ref = theirs(x)
                diff = float((ours(x) - ref).abs().max() / ref.abs().max())
            for _ in range(2):  # warm-up
                _step(ours, x)()
                _step(theirs, x)()
            t_ours, t_peft = _alternating(_step(ours, x), _step(theirs, x), repeats=15,
                                          sync=sync)
            rows.append({"case": f"{'DoRA' if dora else 'LoRA'} fwd+bwd d={d} r={r} "
                                 f"tokens={tokens}",
                         "ours_s": t_ours, "peer_s": t_peft, "ratio": t_ours / t_peft,
                         "max_rel_diff": diff})
            print(rows[-1], flush=True)
    extra = {}
    if device == "cpu":
        extra["transient_memory"] = {
            "method": "torch.profiler CPU memory profiler (profile_memory=True): peak of the "
                      "running sum of bytes allocated minus freed per operator",
            "rows": _memory_rows()}
        print(extra, flush=True)
    write_result("lora", title="LoRA / DoRA layers vs PEFT",
                 description=__doc__.strip(), ours="refimpl.lora (LoRALinear, DoRALinear with "
                 "the factored norm)", peer="peft (LoRA, use_dora=True)", device=device_name,
                 rows=rows, extra=extra)


if __name__ == "__main__":
    main()
