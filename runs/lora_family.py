"""The long run behind chapter 09's "methods side by side" (notebooks/09_lora/lora_family.md).

The notebook's live run trains one MiniLM layer for 12 steps: enough to show the mechanics,
too little to rank the methods. This script runs the same comparison (the same task, the same
adapter configurations, the same classifier, the same :class:`refimpl.experiments.Trainer`
steps with the live run's batch size, learning rate and sequence length) with a budget that
can: all six encoder layers, 150 steps, four seeds per variant (about 4 minutes a seed on
two cores, one torch thread). The seed draws the classifier head, the batch order and every
random part of an initialisation (LoRA's and DoRA's ``A``, VeRA's shared matrices, CURLoRA's
indices); PiSSA, MiLoRA, OLoRA, CorDA and NLoRA start from the same factors for every seed.

    python -m runs.lora_family                    # every default seed (0 1 2 3)
    python -m runs.lora_family --seeds 0 1        # a subset, merged into the existing JSON
    python -m runs.lora_family --seeds 2 3        # (so that each call stays short)
    python -m runs.lora_family --smoke --out /tmp/lora_family.json   # seconds, for the tests

Results go to ``runs/results/lora_family.json`` (``--out`` to change): the commands, the date,
the machine (:func:`refimpl.experiments.machine`), the configuration and, per variant and
seed, the training-loss curve, held-out evaluations and final numbers. A run with a different
configuration than the file's is refused rather than merged (``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from refimpl import experiments as ex
from refimpl import lora
from refimpl.backend import kernel_env

RESULT = Path(__file__).resolve().parent / "results" / "lora_family.json"
PACKAGES = ("email", "unittest", "asyncio", "xml")
TARGET = r".*attention\.self\.(query|value)"
N_TEST = 200          # the first 200 shuffled docstrings are held out, as in the notebook
DATA_SEED = 0         # the shuffle of the docstrings (the notebook's SEED)
RANK = 8
TORCH_THREADS = 1     # as the notebooks run (NOTEBOOK_ENV); BLAS and OpenMP at one thread too

FULL = {"layers": 6, "max_length": 16, "steps": 150, "batch": 8, "lr": 5e-3,
        "eval_every": 25, "final_window": 20, "seeds": [0, 1, 2, 3]}
SMOKE = {"layers": 1, "max_length": 8, "steps": 2, "batch": 4, "lr": 1e-3,
         "eval_every": 1, "final_window": 2, "seeds": [0]}
SMOKE_VARIANTS = ("LoRA", "PiSSA")


def variants(cov, seed: int) -> dict:
    """The notebook's ``FAMILY`` and ``OTHERS``, with every random part drawn from ``seed``."""
    r = RANK
    cfgs = {
        "LoRA": lora.LoRAConfig(rank=r, alpha=2 * r),
        "PiSSA": lora.LoRAConfig(rank=r, alpha=2 * r, init="pissa"),
        "MiLoRA": lora.LoRAConfig(rank=r, alpha=2 * r, init="milora"),
        "OLoRA": lora.LoRAConfig(rank=r, alpha=2 * r, init="olora"),
        "CorDA-IPM": lora.LoRAConfig(rank=r, alpha=2 * r, init="corda_ipm", covariances=cov),
        "NLoRA": lora.NLoRAConfig(rank=r, alpha=2 * r, init="nlora"),
        "DoRA": lora.DoRAConfig(rank=r, alpha=2 * r),
        "VeRA": lora.VeRAConfig(rank=64),
        "SVFT banded": lora.SVFTConfig(pattern="banded", width=1),
        "CURLoRA": lora.CURLoRAConfig(rank=16),
    }
    return {k: dataclasses.replace(c, seed=seed) if hasattr(c, "seed") else c
            for k, c in cfgs.items()}


def describe(cfg) -> str:
    """A configuration as text, without its seed and covariances."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
              if f.name not in ("seed", "covariances")}
    return f"{type(cfg).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


def prepare(conf: dict):
    """Tokenized task and calibration covariances, as in the notebook's side-by-side cells."""
    tokenizer, bert = ex.load_minilm()
    texts, y = ex.stdlib_docstrings(list(PACKAGES), seed=DATA_SEED)
    enc = tokenizer(texts, padding="max_length", truncation=True,
                    max_length=conf["max_length"], return_tensors="pt")
    train = (enc["input_ids"][N_TEST:], enc["attention_mask"][N_TEST:], y[N_TEST:])
    test = (enc["input_ids"][:N_TEST], enc["attention_mask"][:N_TEST], y[:N_TEST])
    calib = [(train[0][i:i + 32], train[1][i:i + 32]) for i in range(0, 64, 32)]
    base = ex.MeanPooledClassifier(bert, conf["layers"], len(PACKAGES), DATA_SEED)
    cov = lora.input_covariances(base, TARGET, calib)
    return bert, train, test, cov


def run_one(bert, train, test, cfg, conf: dict, seed: int) -> dict:
    """Train one variant with one seed; the notebook's ``run`` with the long budget."""
    start = time.perf_counter()
    base = ex.MeanPooledClassifier(bert, conf["layers"], len(PACKAGES), seed)
    model = lora.wrap(base, TARGET, cfg)
    model.head.requires_grad_(True)
    n_head = sum(p.numel() for p in model.head.parameters())
    params = lora.trainable_parameters(model) - n_head
    trainer = ex.Trainer(model, lr=conf["lr"])  # AdamW without weight decay, as the notebook
    g = torch.Generator().manual_seed(seed)

    def evaluate():
        with torch.no_grad():
            logits = model(test[:2])
        return (float(ex.cross_entropy(logits, test[2])),
                float((logits.argmax(1) == test[2]).float().mean()))

    losses, eval_steps, eval_loss, eval_acc = [], [], [], []
    for step in range(1, conf["steps"] + 1):
        idx = torch.randint(len(train[2]), (conf["batch"],), generator=g)
        losses.append(trainer.step((train[0][idx], train[1][idx]), train[2][idx]))
        if step % conf["eval_every"] == 0 or step == conf["steps"]:
            loss, acc = evaluate()
            eval_steps.append(step)
            eval_loss.append(loss)
            eval_acc.append(acc)
    return {"params": params,
            "losses": [round(v, 5) for v in losses],
            "eval_steps": eval_steps,
            "eval_loss": [round(v, 5) for v in eval_loss],
            "eval_acc": [round(v, 4) for v in eval_acc],
            "final_loss": round(float(np.mean(losses[-conf["final_window"]:])), 5),
            "test_loss": round(eval_loss[-1], 5),
            "test_acc": round(eval_acc[-1], 4),
            "seconds": round(time.perf_counter() - start, 1)}


def _configuration(conf: dict) -> dict:
    keys = ("layers", "max_length", "steps", "batch", "lr", "eval_every", "final_window")
    return {**{k: conf[k] for k in keys}, "rank": RANK, "target": TARGET,
            "packages": list(PACKAGES), "n_test": N_TEST, "data_seed": DATA_SEED,
            "optimizer": "refimpl.experiments.Trainer (AdamW, weight_decay=0, constant lr)",
            "final_loss": f"mean training loss of the last {conf['final_window']} steps",
            "test_loss": f"cross-entropy on the {N_TEST} held-out docstrings after the "
                         "last step",
            "torch_threads": TORCH_THREADS,
            "variants": {k: describe(c) for k, c in variants(None, 0).items()}}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: 0 1 2 3)")
    parser.add_argument("--steps", type=int, help=f"training steps (default {FULL['steps']})")
    parser.add_argument("--variants", nargs="+", help="only these variants")
    parser.add_argument("--smoke", action="store_true",
                        help="1 layer, 2 steps, 1 seed, 2 variants: checks the script runs")
    parser.add_argument("--out", type=Path, default=RESULT, help="the JSON to write/merge")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing JSON")
    args = parser.parse_args(argv)

    torch.set_num_threads(TORCH_THREADS)
    conf = dict(SMOKE if args.smoke else FULL)
    if args.steps is not None:
        conf["steps"] = args.steps
    seeds = args.seeds if args.seeds is not None else conf["seeds"]
    names = list(args.variants or (SMOKE_VARIANTS if args.smoke else variants(None, 0)))
    unknown = set(names) - set(variants(None, 0))
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}")
    configuration = _configuration(conf)

    doc = None
    if args.out.exists() and not args.fresh:
        doc = json.loads(args.out.read_text())
        if doc.get("configuration") != configuration:
            raise SystemExit(f"{args.out} holds a run with another configuration; "
                             "pass --fresh to replace it or --out to write elsewhere")
    if doc is None:
        doc = {"name": "lora_family",
               "description": "Chapter 09's side-by-side comparison of LoRA variants on "
                              "MiniLM, with the long budget and several seeds per variant "
                              "(runs/lora_family.py).",
               "configuration": configuration, "invocations": [], "results": {}}

    command = "python -m runs.lora_family " + shlex.join(sys.argv[1:] if argv is None
                                                          else argv)
    bert, train, test, cov = prepare(conf)
    started = time.perf_counter()
    for seed in seeds:
        cfgs = variants(cov, seed)
        for name in names:
            res = run_one(bert, train, test, cfgs[name], conf, seed)
            res["invocation"] = len(doc["invocations"])
            doc["results"].setdefault(name, {})[str(seed)] = res
            print(f"seed {seed} {name:<12} final loss {res['final_loss']:.3f} "
                  f"test loss {res['test_loss']:.3f} acc {res['test_acc']:.3f} "
                  f"({res['seconds']:.0f} s)", flush=True)
    doc["invocations"].append({
        "command": command.strip(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": ex.machine(), "env": kernel_env(), "seeds": seeds, "variants": names,
        "wall_s": round(time.perf_counter() - started, 1)})
    for name in doc["results"]:
        doc["results"][name] = dict(sorted(doc["results"][name].items(),
                                           key=lambda kv: int(kv[0])))
    last = doc["invocations"][-1]
    all_seeds = sorted({int(s) for r in doc["results"].values() for s in r})
    doc["command"] = "python -m runs.lora_family --seeds " + " ".join(map(str, all_seeds))
    doc["date"], doc["machine"] = last["date"], last["machine"]
    doc["torch_threads"] = TORCH_THREADS
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")
    return doc


if __name__ == "__main__":
    main()
