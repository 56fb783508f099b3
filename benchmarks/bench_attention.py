"""Attention variants: per-token decoding time relative to MHA, and the attention kernel vs SDPA.

1. Decoding: one layer of each variant at the same model width, its cache pre-filled with
   random entries to a context of 1k–16k tokens; the median time of one decoding step (append
   one token, attend over the cache), as a ratio to MHA's time at the same context. MLA runs
   in its absorbed form (the inference form) and, for comparison, its plain form.
2. Kernel: refimpl's masked-softmax ``causal_attention`` against
   ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` on the same
   materialised Q, K, V (full-sequence forward).

CPU float32 on one thread by default. On CUDA (``torch.cuda.is_available()``) the same code
runs in bfloat16 on the GPU with synchronisation around each timing; the result file names
the device.
"""

from __future__ import annotations

import statistics

import torch

from benchmarks._common import write_result
from refimpl.attention import causal_attention, make_attention
from refimpl.experiments import median_time, prefilled_decode_step

D_MODEL = 512
VARIANTS = {  # name: (kind, config); width 512, 8 query heads of 64 where the variant has heads
    "MHA": ("mha", {"n_heads": 8}),
    "GQA g=2": ("gqa", {"n_heads": 8, "n_kv_heads": 2}),
    "MQA": ("mqa", {"n_heads": 8}),
    "MLA (absorbed)": ("mla", {"n_heads": 8, "head_dim": 64, "kv_latent_dim": 256,
                               "q_latent_dim": 384, "rope_head_dim": 32}),
    "MLA (plain)": ("mla", {"n_heads": 8, "head_dim": 64, "kv_latent_dim": 256,
                            "q_latent_dim": 384, "rope_head_dim": 32}),
    "MFA C=128": ("mfa", {"n_heads": 8, "head_dim": 128}),
    "MFA-KR C=128": ("mfa-kr", {"n_heads": 8, "head_dim": 128}),
    "TPA (2,2)": ("tpa", {"n_heads": 8, "head_dim": 64, "k_rank": 2, "v_rank": 2}),
}


def _setup():
    if torch.cuda.is_available():  # GPU path (bf16); not exercised on the CPU reference machine
        return "cuda", torch.bfloat16, torch.cuda.synchronize, torch.cuda.get_device_name()
    torch.set_num_threads(1)  # one core: steadier on a shared machine, and the layers are small
    return "cpu", torch.float32, None, "cpu (1 thread)"


def _decode_steps(context, device, dtype):
    """One decoding-step closure per variant, each on its own pre-filled cache."""
    steps, bytes_per_token = {}, {}
    for name, (kind, cfg) in VARIANTS.items():
        layer = make_attention(kind, D_MODEL, **cfg).to(device=device, dtype=dtype).eval()
        layer.absorbed = name == "MLA (absorbed)"
        steps[name], cache = prefilled_decode_step(layer, context)
        bytes_per_token[name] = cache.elements_per_token * torch.finfo(dtype).bits // 8
    return steps, bytes_per_token


def main():
    device, dtype, sync, device_name = _setup()
    rows = []
    for context in (1024, 4096, 16384):
        rounds = 15 if context < 16384 else 5
        steps, bytes_per_token = _decode_steps(context, device, dtype)
        # Round-robin over the variants so that load drifts on a shared machine hit all alike.
        samples = {name: [] for name in steps}
        for step in steps.values():
            median_time(step, repeats=1, warmup=1, sync=sync)   # grows each cache once
        for _ in range(rounds):
            for name, step in steps.items():
                samples[name].append(median_time(step, repeats=1, warmup=0, sync=sync))
        times = {name: statistics.median(ts) for name, ts in samples.items()}
        mha_s = times["MHA"]
        for name, t in times.items():
            if name == "MHA":
                continue
            rows.append({"case": f"decode step, {name}, context {context}", "ours_s": t,
                         "peer_s": mha_s, "ratio": t / mha_s,
                         "cache_bytes_per_token": bytes_per_token[name],
                         "mha_cache_bytes_per_token": bytes_per_token["MHA"]})
            print(f"{context:6d} {name:15s} {t * 1e3:8.3f} ms  vs MHA {mha_s * 1e3:8.3f} ms "
                  f"ratio {t / mha_s:5.2f}", flush=True)
        del steps

    gen = torch.Generator(device="cpu").manual_seed(1)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for T in (256, 1024, 2048):
        q, k, v = (torch.randn(1, 8, T, 64, generator=gen).to(device, dtype) for _ in range(3))
        with torch.no_grad():
            ours = causal_attention(q, k, v)
            peer = sdpa(q, k, v, is_causal=True)
            err = (ours.float() - peer.float()).abs().max().item()
            t_ours = median_time(lambda q=q, k=k, v=v: causal_attention(q, k, v),
                                 repeats=7, sync=sync)
            t_peer = median_time(lambda q=q, k=k, v=v: sdpa(q, k, v, is_causal=True),
                                 repeats=7, sync=sync)
        rows.append({"case": f"causal attention forward, 8 heads x 64, T={T}", "ours_s": t_ours,
                     "peer_s": t_peer, "ratio": t_ours / t_peer, "max_abs_diff": err})
        print(f"kernel T={T}: ours {t_ours * 1e3:.2f} ms, SDPA {t_peer * 1e3:.2f} ms, "
              f"ratio {t_ours / t_peer:.2f}, max |diff| {err:.1e}", flush=True)

    write_result(
        "attention",
        title="Attention variants: decoding step vs MHA; causal attention vs SDPA",
        description=(
            "Decode rows: one attention layer (width 512) per variant, cache pre-filled to the "
            "context length, median time of one decoding step (variants interleaved); the peer "
            "column is MHA (8 heads of 64) at the same context and the ratio is variant / MHA. "
            "Kernel rows: refimpl's masked-softmax causal_attention vs "
            f"torch.nn.functional.scaled_dot_product_attention on the same Q, K, V ({dtype})."),
        ours="refimpl.attention variants / refimpl.attention.causal_attention",
        peer="refimpl MHA (decode rows) / torch.nn.functional.scaled_dot_product_attention",
        device=device_name, rows=rows)


if __name__ == "__main__":
    main()
