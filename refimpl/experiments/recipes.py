"""Chapter 11's experiment recipes on the one training loop (:func:`~refimpl.experiments.fit`).

- :func:`train_lm`: a byte language model on random windows, AdamW with warm-up and cosine
  decay, held-out loss along the way;
- :func:`compare_variants`: one :class:`~refimpl.experiments.TinyLM` per attention variant,
  same data, same seed;
- :func:`fit_classifier`: a classifier on a train/held-out split, held-out accuracy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from refimpl._validation import check_fraction, check_positive_int
from refimpl.experiments.corpora import lm_batch
from refimpl.experiments.models import TinyLM
from refimpl.experiments.training import TrainResult, evaluate_lm, fit


def train_lm(model: nn.Module, train: torch.Tensor, held_out: torch.Tensor, *, steps: int = 300,
             batch_size: int = 16, seq_len: int = 64, lr: float = 3e-3, seed: int = 0,
             eval_every: int = 50, progress: bool | None = None) -> TrainResult:
    """Chapter 11's recipe: :func:`fit` on random windows with AdamW, warm-up and cosine decay.

    AdamW (weight decay 0.01), 20 warm-up steps, cosine decay to 0, gradients clipped to norm
    1; held-out loss (:func:`evaluate_lm`) every ``eval_every`` steps.

    Parameters
    ----------
    model : torch.nn.Module
        A sequence model such as :class:`TinyLM`.
    train, held_out : torch.Tensor
        Integer token sequences.
    steps : int
        Optimisation steps.
    batch_size : int
        Windows per batch.
    seq_len : int
        Inputs per window.
    lr : float
        Peak learning rate.
    seed : int
        Seeds the batches.
    eval_every : int
        Evaluation period.
    progress : bool, optional
        As for :func:`fit`.

    Returns
    -------
    TrainResult
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    seq_len = check_positive_int(seq_len, "seq_len")
    return fit(model, lambda g: lm_batch(train, batch_size, seq_len, g), steps=steps, lr=lr,
               weight_decay=0.01, warmup=20, schedule="cosine", clip_norm=1.0, seed=seed,
               evaluate=lambda m: evaluate_lm(m, held_out, seq_len), eval_every=eval_every,
               progress=progress)


def compare_variants(configs: dict[str, tuple[str, dict]], train: torch.Tensor,
                     held_out: torch.Tensor, *, d_model: int = 64, n_layers: int = 2,
                     seed: int = 0, device: str = "cpu",
                     **train_kwargs: Any) -> dict[str, dict]:
    """Train one :class:`TinyLM` per attention variant on the same data with :func:`train_lm`.

    Every model starts from the same seed and sees the same batches.

    Parameters
    ----------
    configs : dict
        ``name: (kind, attention_kwargs)``, as for :class:`TinyLM`.
    train, held_out : torch.Tensor
        Integer token sequences.
    d_model, n_layers : int
        Size of every model.
    seed : int
        Seeds the models and the batches.
    device : str
        Where the models are trained.
    **train_kwargs
        Passed to :func:`train_lm` (``steps``, ``batch_size``, ``seq_len``, ``lr``,
        ``eval_every``, ``progress``).

    Returns
    -------
    dict
        Per name: ``{"kind", "params" (model parameters), "cache_per_token" (KV-cache
        elements per token, all layers), "result" (the :class:`TrainResult`)}``.
    """
    out = {}
    for name, (kind, kw) in configs.items():
        model = TinyLM(d_model, n_layers, kind, kw, seed=seed).to(device)
        result = train_lm(model, train, held_out, seed=seed, **train_kwargs)
        out[name] = {"kind": kind, "params": sum(p.numel() for p in model.parameters()),
                     "cache_per_token": model.cache_elements_per_token, "result": result}
    return out


def fit_classifier(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *,
                   train_frac: float = 0.75, steps: int = 300, batch_size: int = 32,
                   lr: float = 3e-3, seed: int = 0,
                   progress: bool | None = None) -> tuple[list[float], float]:
    """Train a classifier with Adam on the first ``train_frac`` of ``(X, y)``; test on the rest.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(X[idx])`` gives class logits ``(batch, n_classes)``.
    X : torch.Tensor
        Inputs, one example per row.
    y : torch.Tensor
        Integer labels ``(N,)``.
    train_frac : float
        Share of the examples trained on, in ``(0, 1)``.
    steps : int
        Optimisation steps (:func:`fit`, Adam, constant rate).
    batch_size : int
        Examples per step, drawn with replacement from the training part.
    lr : float
        Learning rate.
    seed : int
        Seeds the batches.
    progress : bool, optional
        As for :func:`fit`.

    Returns
    -------
    tuple
        ``(losses, accuracy)``: the training loss at every step and the accuracy on the
        held-out examples.

    Raises
    ------
    ValueError
        If ``train_frac`` leaves no example on either side.
    """
    n_train = int(check_fraction(train_frac, "train_frac") * len(y))
    if not 0 < n_train < len(y):
        raise ValueError(f"train_frac={train_frac} leaves no example on one side of {len(y)}")
    batch_size = check_positive_int(batch_size, "batch_size")

    def batch(gen):
        idx = torch.randint(0, n_train, (batch_size,), generator=gen)
        return X[idx], y[idx]

    result = fit(model, batch, steps=steps, lr=lr, seed=seed, progress=progress)
    with torch.no_grad():
        acc = float((model(X[n_train:]).argmax(-1) == y[n_train:]).float().mean())
    return result.losses, acc
