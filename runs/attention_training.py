"""Chapter 11's training comparisons, with a budget and seeds that can rank them.

The pages ``notebooks/11_attention/training.md`` (matched attention parameters) and
``training_budget.md`` (matched KV-cache budget) train one ``TinyLM`` per attention variant
for 150 steps with one seed, which cannot separate the variants. This script runs the same
comparison (the same variants and configurations, defined here once and imported by the
pages; the same model, data and recipe, ``refimpl.experiments.compare_variants``) for longer
and with several seeds per variant, and writes ``runs/results/attention_training.json``,
which the pages plot beside their live run::

    python -m runs.attention_training --page training                # every seed, variant
    python -m runs.attention_training --page training_budget --seeds 0 1
    python -m runs.attention_training --page training_budget --seeds 2 3 --variants MFA
    python -m runs.attention_training --page training --smoke --output /tmp/smoke.json

A seed drives both the models' initialisation and the batch order. Each invocation merges
its runs into the JSON, so the experiment can be run in chunks (a subset of seeds or
variants at a time); a chunk whose configuration differs from the stored one is refused
unless ``--replace`` starts the page over. Run it with one BLAS/OpenMP thread
(``OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``); the script sets torch's
threads (``--threads``, default 1) and records them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

RESULT = Path(__file__).resolve().parent / "results" / "attention_training.json"


def matched_parameters(d_model):
    """training.md's variants: about MHA's 4 d² attention parameters each."""
    h = d_model // 4
    return {
        "MHA": ("mha", {"n_heads": 4}),
        "GQA g=2": ("gqa", {"n_heads": 6, "n_kv_heads": 2, "head_dim": h}),
        "MQA": ("mqa", {"n_heads": 7, "head_dim": h}),
        "MLA": ("mla", {"n_heads": 4, "head_dim": h, "kv_latent_dim": 2 * h,
                        "q_latent_dim": 2 * h, "rope_head_dim": h // 2}),
        "MFA": ("mfa", {"n_heads": 4, "head_dim": 2 * h,
                        "q_latent_dim": 3 * h // 2}),
        "MFA-KR": ("mfa-kr", {"n_heads": 4, "head_dim": 2 * h,
                              "q_latent_dim": 3 * h // 2}),
        "TPA (6,2,2)": ("tpa", {"n_heads": 4, "head_dim": h}),
    }


def matched_cache(d_model):
    """training_budget.md's variants: 2 d/4 cache elements per token per layer each."""
    h = d_model // 4
    return {
        "MHA": ("mha", {"n_heads": 2, "head_dim": h // 2}),
        "GQA g=2": ("gqa", {"n_heads": 4, "n_kv_heads": 2,
                            "head_dim": h // 2}),
        "MQA": ("mqa", {"n_heads": 4, "head_dim": h}),
        "MLA": ("mla", {"n_heads": 4, "head_dim": h,
                        "kv_latent_dim": 3 * h // 2, "q_latent_dim": 2 * h,
                        "rope_head_dim": h // 2}),
        "MFA": ("mfa", {"n_heads": 8, "head_dim": h, "q_latent_dim": 2 * h}),
        "MFA-KR": ("mfa-kr", {"n_heads": 4, "head_dim": 2 * h,
                              "q_latent_dim": 3 * h // 2}),
        "TPA (6,1,1)": ("tpa", {"n_heads": 4, "head_dim": h - 4,
                                "k_rank": 1, "v_rank": 1}),
    }


PAGES = {"training": matched_parameters, "training_budget": matched_cache}

# The pages' default model and corpus; a longer schedule than their live 150 steps.
LONG = {"data_bytes": 1_000_000, "train_fraction": 0.9, "d_model": 64, "n_layers": 2,
        "train": {"steps": 600, "batch_size": 8, "seq_len": 64, "eval_every": 50}}
SEEDS = (0, 1, 2, 3)
# A few seconds: the same code path on a tiny corpus, one layer, a few steps.
SMOKE = {"data_bytes": 20_000, "train_fraction": 0.9, "d_model": 64, "n_layers": 1,
         "train": {"steps": 4, "batch_size": 2, "seq_len": 16, "eval_every": 2}}
SMOKE_SEEDS, SMOKE_VARIANTS = (0,), 2


# --- reading the results (the pages import these) -------------------------------------------

def load(page: str, path: Path = RESULT) -> dict:
    """The stored long run of ``page``: the JSON's ``pages[page]``."""
    return json.loads(Path(path).read_text())["pages"][page]


def final_losses(record: dict) -> dict[str, list[float]]:
    """Per variant, the final eval loss of every seed (in seed order)."""
    return {name: [v["seeds"][s]["final_eval_loss"]
                   for s in sorted(v["seeds"], key=int)]
            for name, v in record["variants"].items()}


def separated(a, b) -> int:
    """Compare two variants by their seeds' final losses ``a`` and ``b``.

    -1 if every seed of ``a`` ends below every seed of ``b``, +1 if every one
    ends above, 0 if the two ranges overlap ("not separated"). With n seeds
    each and no real difference, the chance of ±1 is 2 / C(2n, n) (n = 4:
    2/70, about 3 %).
    """
    if max(a) < min(b):
        return -1
    if min(a) > max(b):
        return 1
    return 0


def false_separation(n_seeds: int) -> float:
    """Chance that :func:`separated` is ±1 for two identical variants."""
    from math import comb

    return 2 / comb(2 * n_seeds, n_seeds)


def summary(record: dict, reference: str = "MHA") -> list[dict]:
    """Rows per variant: seeds, mean, std (n − 1), min, max, verdict vs ``reference``."""
    import statistics

    finals = final_losses(record)
    words = {-1: "lower", 0: "not separated", 1: "higher"}
    rows = []
    for name, losses in finals.items():
        verdict = ("(reference)" if name == reference
                   else words[separated(losses, finals[reference])])
        rows.append({"variant": name, "seeds": len(losses),
                     "mean": statistics.mean(losses), "std": statistics.stdev(losses),
                     "min": min(losses), "max": max(losses),
                     f"vs {reference}": verdict})
    return rows


def describe(record: dict) -> str:
    """One line for a figure: budget, model, machine and date of the long run."""
    cfg, m = record["config"], record["machine"]
    n_seeds = min(len(v["seeds"]) for v in record["variants"].values())
    cpu = m.get("cpu_model") or m.get("processor", "?")
    cpu = cpu.replace("(R)", "").replace(" Processor", "")
    return (f"long run: {cfg['train']['steps']} steps × {n_seeds} seeds, "
            f"d={cfg['d_model']}, {cfg['n_layers']} layers; {cpu}, "
            f"{record['torch_threads']} torch thread"
            f"{'' if record['torch_threads'] == 1 else 's'}; {record['date'][:10]}")


def plot_final(record: dict, live: dict | None = None,
               live_label: str = "live run on this page: 1 seed, 150 steps"):
    """Final eval loss per variant: every seed a dot, mean ± std a bar.

    With ``live`` (name → final loss of the page's live run) a first panel, titled
    ``live_label``, shows it.
    """
    import matplotlib.pyplot as plt

    finals = final_losses(record)
    names = sorted(finals, key=lambda n: sum(finals[n]) / len(finals[n]))
    rows = 1 if live is None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(6.5, 2.6 * rows + 0.4), squeeze=False)
    axes = axes[:, 0]
    if live is not None:
        ax = axes[0]
        ax.plot(range(len(names)), [live[n] for n in names], "o", color="tab:gray")
        ax.set_title(live_label, fontsize=9)
    ax = axes[-1]
    for i, n in enumerate(names):
        v = finals[n]
        mean = sum(v) / len(v)
        std = (sum((x - mean) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0
        ax.plot([i] * len(v), v, "o", color="tab:blue", alpha=0.5, ms=4,
                label="one seed" if i == 0 else None)
        ax.errorbar(i + 0.18, mean, yerr=std, fmt="s", color="black", ms=4, capsize=3,
                    label="mean ± std" if i == 0 else None)
    ax.set_title(describe(record), fontsize=8)
    ax.legend(fontsize=8, loc="upper left")
    for ax in axes:
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_ylabel("final held-out loss\n(nats/byte)", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_curves(record: dict, reference: str = "MHA"):
    """Eval-loss curves of the long run, mean over seeds with a ±std band; below, each
    variant's mean curve minus ``reference``'s."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6.0), sharex=True)
    curves = {}
    for name, v in record["variants"].items():
        runs = [v["seeds"][s] for s in sorted(v["seeds"], key=int)]
        steps = np.array(runs[0]["steps"])
        y = np.array([r["eval_loss"] for r in runs])
        curves[name] = (steps, y.mean(0), y.std(0, ddof=1) if len(y) > 1 else 0 * steps)
    ref = curves[reference][1]
    for name, (steps, mean, std) in curves.items():
        (line,) = top.plot(steps, mean, label=name, lw=1.2)
        top.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        bottom.plot(steps, mean - ref, color=line.get_color(), lw=1.2)
        bottom.fill_between(steps, mean - ref - std, mean - ref + std,
                            color=line.get_color(), alpha=0.15)
    top.set_ylabel("held-out loss (nats/byte)", fontsize=8)
    top.set_title(describe(record), fontsize=8)
    top.legend(fontsize=8, ncol=2)
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_ylabel(f"minus {reference}'s mean\n(nats/byte)", fontsize=8)
    bottom.set_xlabel("step", fontsize=8)
    for ax in (top, bottom):
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def run(page: str, seeds, setup: dict, variants=None, *, progress: bool = False) -> dict:
    """Train ``page``'s variants for each seed; return the page's record (no merging).

    Parameters
    ----------
    page : {"training", "training_budget"}
    seeds : iterable of int
        Each seeds the models' initialisation and the batch order.
    setup : dict
        ``LONG`` or ``SMOKE`` (possibly with other steps).
    variants : list of str, optional
        A subset of the page's variant names (default: all).
    progress : bool
        Show a progress bar per training run.

    Returns
    -------
    dict
        ``config`` (model, corpus, schedule, every variant's configuration) and ``variants``
        (per name: ``kind``, ``kwargs``, ``params``, ``cache_per_token`` and per seed the
        eval-loss curve ``steps``/``eval_loss``, ``final_eval_loss`` and ``seconds``).
    """
    import platform

    from refimpl import experiments as ex

    configs = PAGES[page](setup["d_model"])
    names = list(configs) if variants is None else list(variants)
    unknown = set(names) - set(configs)
    if unknown:
        raise ValueError(f"unknown variants for page {page!r}: {sorted(unknown)}; "
                         f"choose from {list(configs)}")
    data = ex.stdlib_bytes(setup["data_bytes"])
    train, held_out = ex.split_corpus(data, setup["train_fraction"])
    config = {
        "d_model": setup["d_model"], "n_layers": setup["n_layers"],
        "corpus": {"source": "refimpl.experiments.stdlib_bytes",
                   "data_bytes": setup["data_bytes"], "train_bytes": len(train),
                   "held_out_bytes": len(held_out), "python": platform.python_version()},
        "recipe": "refimpl.experiments.compare_variants (train_lm: AdamW, 20 warm-up "
                  "steps, cosine decay, clip 1)",
        "train": dict(setup["train"]),
        "configs": {n: {"kind": k, "kwargs": kw} for n, (k, kw) in configs.items()},
    }
    out = {}
    for name in names:
        record = None
        for seed in seeds:
            start = time.perf_counter()
            r = ex.compare_variants({name: configs[name]}, train, held_out,
                                    d_model=setup["d_model"], n_layers=setup["n_layers"],
                                    seed=seed, device="cpu", progress=progress,
                                    **setup["train"])[name]
            seconds = time.perf_counter() - start
            if record is None:
                record = {"kind": r["kind"], "kwargs": configs[name][1],
                          "params": r["params"], "cache_per_token": r["cache_per_token"],
                          "seeds": {}}
            res = r["result"]
            curve = [round(v, 5) for v in res.eval_loss]  # far below the seed spread
            record["seeds"][str(seed)] = {"steps": res.steps, "eval_loss": curve,
                                          "final_eval_loss": curve[-1],
                                          "seconds": round(seconds, 2)}
            print(f"{page} {name:12s} seed {seed}: final eval loss "
                  f"{res.final_eval_loss:.4f} ({seconds:.1f} s)", flush=True)
        out[name] = record
    return {"config": config, "variants": out}


def _dumps(doc: dict) -> str:
    """JSON with one key per line but every list of numbers on one line."""
    text = json.dumps(doc, indent=1)
    return re.sub(r"\[\s*([-0-9.,eE\s]*?)\s*\]",
                  lambda m: "[" + re.sub(r",\s*", ", ", m.group(1)) + "]", text)


def merge(path: Path, page: str, new: dict, invocation: dict, *, replace: bool = False) -> dict:
    """Merge ``new`` (from :func:`run`) into the JSON at ``path`` and write it.

    Runs of the same variant and seed are replaced; the stored configuration must equal the
    new one unless ``replace`` (which drops the page's stored runs first).
    """
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.setdefault("name", "attention_training")
    doc.setdefault("description", __doc__.splitlines()[0])
    pages = doc.setdefault("pages", {})
    old = pages.get(page)
    if old is not None and old["config"] != new["config"] and not replace:
        raise SystemExit(f"{path}: the stored configuration of page {page!r} differs from "
                         "this run's; pass --replace to start the page over")
    if old is None or replace:
        old = {"config": new["config"], "variants": {}, "invocations": []}
    for name, rec in new["variants"].items():
        seeds = {**old["variants"].get(name, {}).get("seeds", {}), **rec["seeds"]}
        old["variants"][name] = {**rec, "seeds": dict(sorted(seeds.items(),
                                                             key=lambda kv: int(kv[0])))}
    order = list(new["config"]["configs"])
    old["variants"] = {n: old["variants"][n] for n in order if n in old["variants"]}
    old["invocations"].append(invocation)
    all_seeds = sorted({int(s) for v in old["variants"].values() for s in v["seeds"]})
    steps = new["config"]["train"]["steps"]
    smoke = invocation["smoke"]
    default = (SMOKE if smoke else LONG)["train"]["steps"]
    old["command"] = (f"python -m runs.attention_training --page {page}"
                      + (" --smoke" if smoke else "") + " --seeds "
                      + " ".join(map(str, all_seeds))
                      + ("" if steps == default else f" --steps {steps}"))
    old["date"] = invocation["date"]
    old["machine"] = invocation["machine"]
    old["torch_threads"] = invocation["torch_threads"]
    pages[page] = dict(sorted(old.items()))
    doc["pages"] = dict(sorted(pages.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dumps(doc) + "\n")
    return doc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", required=True, choices=sorted(PAGES))
    parser.add_argument("--seeds", type=int, nargs="+", help=f"default {list(SEEDS)}")
    parser.add_argument("--variants", nargs="+", help="a subset of the page's variant names")
    parser.add_argument("--steps", type=int, help=f"default {LONG['train']['steps']}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--output", type=Path, help=f"default {RESULT} "
                        "(with --smoke: a file in the temporary directory)")
    parser.add_argument("--replace", action="store_true",
                        help="drop the page's stored runs instead of merging")
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds: tiny corpus, 1 layer, 4 steps, 1 seed, 2 variants")
    parser.add_argument("--progress", action="store_true", help="progress bar per run")
    args = parser.parse_args(argv)

    import torch

    from refimpl.experiments import machine

    torch.set_num_threads(args.threads)
    setup = json.loads(json.dumps(SMOKE if args.smoke else LONG))
    if args.steps is not None:
        setup["train"]["steps"] = args.steps
        setup["train"]["eval_every"] = min(setup["train"]["eval_every"], args.steps)
    seeds = args.seeds or list(SMOKE_SEEDS if args.smoke else SEEDS)
    variants = args.variants
    if args.smoke and variants is None:
        variants = list(PAGES[args.page](setup["d_model"]))[:SMOKE_VARIANTS]
    output = args.output or (Path(tempfile.gettempdir()) / "attention_training_smoke.json"
                             if args.smoke else RESULT)
    start = time.perf_counter()
    new = run(args.page, seeds, setup, variants, progress=args.progress)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    info = machine()
    invocation = {
        "command": "python -m runs.attention_training "
                   + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                       else argv)),
        "date": now, "machine": info, "torch_threads": torch.get_num_threads(),
        "smoke": args.smoke, "seeds": seeds, "variants": list(new["variants"]),
        "seconds": round(time.perf_counter() - start, 1),
    }
    merge(output, args.page, new, invocation, replace=args.replace)
    print(f"wrote {output} ({invocation['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
