"""Attention: the fused kernel against SDPA, each layer against SDPA on its own Q, K, V, and
per-token decoding time relative to MHA.

1. Kernel (target ratio 1.1): ``refimpl.attention.causal_attention`` with its default kernel
   against ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` called
   directly on the same Q, K, V (MHA shapes, 8 heads of 64, full-sequence forward); the
   reference kernel (the explicit masked softmax) is timed beside them (``reference_s``).
2. Layers (target ratio 1.2): each variant's training forward ``layer(x)`` (no autograd)
   against the same layer's ``qkv(x)``, SDPA and ``w_o`` on the merged heads: the same
   projections, with SDPA on the layer's own materialised Q, K, V (for MLA, whose key and
   value widths differ, the faster of SDPA on V as it is and on V zero-padded to the key
   width, which keeps SDPA on its fused CPU kernel). ``reference_s`` is the layer on the
   reference kernel.
3. Decoding: one layer of each variant at the same model width, its cache pre-filled with
   random entries to a context of 1k–16k tokens; the median time of one decoding step (append
   one token, attend over the cache), as a ratio to MHA's time at the same context. MLA runs
   in its absorbed form (the inference form) and, for comparison, its plain form. Each row
   has the FLOPs per cached token of the step and the cache bytes read per cached token,
   and MHA's, for a roofline reading.

CPU float32 on one thread by default. On CUDA (``torch.cuda.is_available()``) the same code
runs in bfloat16 on the GPU with synchronisation around each timing; the result file names
the device. ``main(quick=True)`` runs small sizes only (a smoke test of the script).
"""

from __future__ import annotations

import statistics

import torch

from benchmarks._common import write_result
from refimpl.attention import (
    attention_impl,
    causal_attention,
    decode_attention_flops,
    make_attention,
)
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
KERNEL_TARGET, LAYER_TARGET = 1.1, 1.2
NOTES = {
    "MLA (plain)": "SDPA on qkv(x) has keys of width d_h + d_h^R = 96 and values of width 64; "
                   "on the CPU, SDPA runs its unfused math kernel when the widths differ, so "
                   "the peer is SDPA on the same Q, K and V zero-padded to 96 (fused kernel), "
                   "as causal_attention does; peer_unpadded_s: SDPA on V as it is.",
    "MLA (absorbed)": "The absorbed form is the decoding form: in a training forward it "
                      "attends with keys of width d_c + d_h^R = 288 and values of width "
                      "d_c = 256 (one shared latent head) instead of 96 and 64 per head, "
                      "about 3x the attention FLOPs of the plain form, by design; it misses the "
                      "target for that reason. The peer is SDPA on the plain form's Q, K and "
                      "V zero-padded (fused kernel); peer_unpadded_s: SDPA on V as it is.",
}


def _setup():
    if torch.cuda.is_available():  # GPU path (bf16); not exercised on the CPU reference machine
        return "cuda", torch.bfloat16, torch.cuda.synchronize, torch.cuda.get_device_name()
    torch.set_num_threads(1)  # one core: steadier on a shared machine, and the layers are small
    return "cpu", torch.float32, None, "cpu (1 thread)"


def _layer(name, device, dtype):
    kind, cfg = VARIANTS[name]
    layer = make_attention(kind, D_MODEL, **cfg).to(device=device, dtype=dtype).eval()
    layer.absorbed = name == "MLA (absorbed)"
    return layer


def _interleaved(fns: dict, rounds: int, sync, *, apart: dict | None = None) -> dict:
    """Median time of each function, sampled round-robin so that load drift hits all alike.

    ``apart`` (the reference kernel's runs) is sampled in rounds of its own afterwards: its
    large temporaries would otherwise slow whichever function runs after it.
    """
    times = {}
    for group in (fns, apart or {}):
        for fn in group.values():
            median_time(fn, repeats=1, warmup=1, sync=sync)
        samples = {name: [] for name in group}
        for _ in range(rounds if group else 0):
            for name, fn in group.items():
                samples[name].append(median_time(fn, repeats=1, warmup=0, sync=sync))
        times.update({name: statistics.median(ts) for name, ts in samples.items()})
    return times


def _max_rel_diff(a, b) -> float:
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


def kernel_rows(lengths, device, dtype, sync, rounds=7):
    """MHA-shaped causal attention: the default kernel vs SDPA called directly."""
    gen = torch.Generator(device="cpu").manual_seed(1)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    rows = []
    for T in lengths:
        q, k, v = (torch.randn(1, 8, T, 64, generator=gen).to(device, dtype) for _ in range(3))
        with torch.no_grad():
            ours, peer = causal_attention(q, k, v), sdpa(q, k, v, is_causal=True)
            ref = causal_attention(q, k, v, impl="reference")
            t = _interleaved({
                "ours": lambda q=q, k=k, v=v: causal_attention(q, k, v),
                "peer": lambda q=q, k=k, v=v: sdpa(q, k, v, is_causal=True),
            }, rounds, sync, apart={
                "reference": lambda q=q, k=k, v=v: causal_attention(q, k, v, impl="reference"),
            })
        rows.append({"case": f"MHA training forward kernel, 8 heads x 64, T={T}",
                     "method": "kernel", "n": T, "ours_s": t["ours"], "peer_s": t["peer"],
                     "ratio": t["ours"] / t["peer"],
                     "target_ratio": KERNEL_TARGET, "reference_s": t["reference"],
                     "max_abs_diff": (ours.float() - peer.float()).abs().max().item(),
                     "reference_max_abs_diff": (ref.float() - peer.float()).abs().max().item()})
        print(f"kernel T={T}: ours {t['ours'] * 1e3:.2f} ms, SDPA {t['peer'] * 1e3:.2f} ms, "
              f"reference {t['reference'] * 1e3:.2f} ms, ratio {t['ours'] / t['peer']:.2f}",
              flush=True)
    return rows


def layer_rows(lengths, device, dtype, sync, rounds=7):
    """Each variant's training forward vs SDPA on the layer's own ``qkv(x)``."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    rows = []
    for T in lengths:
        gen = torch.Generator(device="cpu").manual_seed(2)
        x = torch.randn(1, T, D_MODEL, generator=gen).to(device, dtype)
        for name in VARIANTS:
            torch.manual_seed(0)
            layer = _layer(name, device, dtype)

            def peer(layer=layer, x=x):
                q, k, v, scale = layer.qkv(x)
                return layer.w_o(layer._merge(sdpa(q, k, v, is_causal=True, scale=scale)))

            def peer_v_padded(layer=layer, x=x):
                q, k, v, scale = layer.qkv(x)
                pad = q.shape[-1] - v.shape[-1]
                o = sdpa(q, k, torch.nn.functional.pad(v, (0, pad)), is_causal=True,
                         scale=scale)[..., : v.shape[-1]]
                return layer.w_o(layer._merge(o))

            def reference(layer=layer, x=x):
                with attention_impl("reference"):
                    return layer(x)

            fns = {"ours": lambda layer=layer, x=x: layer(x), "peer": peer}
            padded = name.startswith("MLA")
            if padded:
                fns["peer_v_padded"] = peer_v_padded
            with torch.no_grad():
                diff = _max_rel_diff(layer(x), peer())
                t = _interleaved(fns, rounds, sync, apart={"reference": reference})
            # The peer is the faster of SDPA on qkv(x) as it is and (MLA, whose key and value
            # widths differ) with V zero-padded, which keeps SDPA on its fused CPU kernel.
            best = min(t["peer"], t.get("peer_v_padded", t["peer"]))
            row = {"case": f"training forward, {name}, T={T}", "method": "layer", "n": T,
                   "ours_s": t["ours"], "peer_s": best, "ratio": t["ours"] / best,
                   "target_ratio": LAYER_TARGET, "reference_s": t["reference"],
                   "max_rel_diff": diff}
            if padded:
                row["peer_unpadded_s"] = t["peer"]
            if name in NOTES:
                row["note"] = NOTES[name]
            rows.append(row)
            extra = f", V-padded SDPA {t['peer_v_padded'] * 1e3:.2f} ms" if padded else ""
            print(f"layer T={T} {name:15s} ours {t['ours'] * 1e3:8.2f} ms, qkv+SDPA "
                  f"{t['peer'] * 1e3:8.2f} ms{extra}, reference {t['reference'] * 1e3:8.2f} ms, "
                  f"ratio {t['ours'] / best:.2f}", flush=True)
    return rows


def _decode_flops(name) -> int:
    """FLOPs per cached token of one decoding step of the variant as this package runs it."""
    kind, cfg = VARIANTS[name]
    cfg = {"head_dim": D_MODEL // cfg["n_heads"], **cfg}
    if name == "MLA (plain)":
        # The plain form up-projects every cached latent to k_C and v (2 · d_c · 2 n_h d_h),
        # then scores against [k_C; k_R] and sums the values (2 n_h (2 d_h + d_h^R)).
        H, dh, dc, dr = cfg["n_heads"], cfg["head_dim"], cfg["kv_latent_dim"], cfg["rope_head_dim"]
        return 4 * dc * H * dh + 2 * H * (2 * dh + dr)
    return decode_attention_flops(kind, **cfg)


def decode_rows(contexts, device, dtype, sync):
    """One decoding step of each variant at each context, relative to MHA."""
    rows = []
    for context in contexts:
        rounds = 15 if context < 16384 else 5
        steps, bytes_per_token = {}, {}
        for name in VARIANTS:
            steps[name], cache = prefilled_decode_step(_layer(name, device, dtype), context)
            bytes_per_token[name] = cache.elements_per_token * torch.finfo(dtype).bits // 8
        on_reference = {}
        for name, step in steps.items():
            def reference(step=step):
                with attention_impl("reference"):
                    return step()
            on_reference[f"{name} reference"] = reference
        times = _interleaved(steps, rounds, sync, apart=on_reference)
        mha_s, mha_flops = times["MHA"], _decode_flops("MHA")
        for name in VARIANTS:
            if name == "MHA":
                continue
            t, flops = times[name], _decode_flops(name)
            rows.append({"case": f"decode step, {name}, context {context}", "method": "decode",
                         "n": context, "ours_s": t,
                         "peer_s": mha_s, "ratio": t / mha_s,
                         "reference_s": times[f"{name} reference"],
                         "mha_reference_s": times["MHA reference"],
                         "flops_per_cached_token": flops,
                         "mha_flops_per_cached_token": mha_flops,
                         "cache_bytes_per_token": bytes_per_token[name],
                         "mha_cache_bytes_per_token": bytes_per_token["MHA"],
                         "flops_per_cache_byte": flops / bytes_per_token[name],
                         "mha_flops_per_cache_byte": mha_flops / bytes_per_token["MHA"]})
            print(f"{context:6d} {name:15s} {t * 1e3:8.3f} ms  vs MHA {mha_s * 1e3:8.3f} ms "
                  f"ratio {t / mha_s:5.2f}  (reference {times[f'{name} reference'] * 1e3:8.3f} ms)"
                  f"  {flops} FLOP / {bytes_per_token[name]} B per cached token", flush=True)
        del steps, on_reference
    return rows


def main(quick: bool = False):
    device, dtype, sync, device_name = _setup()
    if quick:  # a smoke test of the script, not a measurement
        contexts, kernel_lengths, layer_lengths = (256,), (128,), (64,)
    else:
        contexts, kernel_lengths, layer_lengths = (1024, 4096, 16384), (256, 1024, 2048), \
            (256, 1024)
    rows = kernel_rows(kernel_lengths, device, dtype, sync)
    rows += layer_rows(layer_lengths, device, dtype, sync)
    rows += decode_rows(contexts, device, dtype, sync)
    write_result(
        "attention",
        title="Attention: the fused kernel and each layer vs SDPA; decoding step vs MHA",
        description=(
            "Kernel rows (target ratio 1.1): refimpl.attention.causal_attention on its default "
            "(fused) kernel vs torch.nn.functional.scaled_dot_product_attention called directly "
            "on the same Q, K, V (8 heads of 64, causal, full sequence); reference_s is the "
            "explicit masked-softmax kernel. Layer rows (target ratio 1.2): each variant's "
            "training forward (width 512, no autograd) vs the same layer's qkv(x), SDPA and "
            "output projection (MLA: with V zero-padded to the key width, the faster peer); "
            "reference_s is the layer on the reference kernel. Decode rows: "
            "one layer per variant, cache pre-filled to the context length, median time of one "
            "decoding step (variants interleaved); the peer column is MHA (8 heads of 64) at the "
            "same context and the ratio is variant / MHA; reference_s and mha_reference_s are "
            "the same steps on the reference kernel; FLOPs and cache bytes per cached token "
            f"(refimpl.attention.decode_attention_flops, {dtype}) give the arithmetic "
            "intensity of each step."),
        ours="refimpl.attention.causal_attention / attention layers",
        peer="torch.nn.functional.scaled_dot_product_attention (kernel and layer rows) / "
             "refimpl MHA (decode rows)",
        device=device_name, rows=rows)


if __name__ == "__main__":
    main()
