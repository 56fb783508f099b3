"""One training loop for every experiment, and the evaluations it reports.

:class:`Trainer` is one optimisation step (AdamW on the trainable parameters, an optional
warm-up and cosine schedule, optional gradient clipping); :func:`fit` runs it for a number of
steps on batches drawn from a seeded generator, with a progress bar and periodic evaluation.
The chapters' recipes built on it are in :mod:`refimpl.experiments.recipes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from tqdm import tqdm

from refimpl._validation import (
    check_choice,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
)
from refimpl.seeding import torch_generator


class TrainResult(NamedTuple):
    """What :func:`fit` records.

    Attributes
    ----------
    losses : list of float
        Training loss (mean cross-entropy of the batch) at every step.
    steps : list of int
        Steps (1-based) after which the model was evaluated.
    eval_loss : list of float
        The evaluation at those steps.
    """

    losses: list[float]
    steps: list[int]
    eval_loss: list[float]

    @property
    def final_eval_loss(self) -> float | None:
        """The last evaluation (``None`` if there was none)."""
        return self.eval_loss[-1] if self.eval_loss else None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, *,
                  reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of logits ``(..., V)`` against integer targets of shape ``(...)``.

    Parameters
    ----------
    logits : torch.Tensor
        ``(..., V)``: ``(B, T, V)`` for sequence models, ``(B, V)`` for classifiers.
    targets : torch.Tensor
        Integer classes, the leading shape of ``logits``.
    reduction : {"mean", "sum"}

    Returns
    -------
    torch.Tensor
        A scalar, in nats.
    """
    check_choice(reduction, "reduction", ("mean", "sum"))
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                       reduction=reduction)


def _to(x, device):
    if isinstance(x, tuple | list):
        return type(x)(_to(t, device) for t in x)
    return x.to(device)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class Trainer:
    """One optimisation step at a time: AdamW on ``model``'s trainable parameters.

    ``step(inputs, targets)`` runs ``model(inputs)``, the :func:`cross_entropy` against
    ``targets``, the backward pass, optional clipping of the gradients' global norm, the AdamW
    update and the schedule. With ``weight_decay=0`` the update is Adam's. The model's mode
    (train/eval) is left as it is.

    Parameters
    ----------
    model : torch.nn.Module
        Its parameters with ``requires_grad`` are trained.
    lr : float
        Peak learning rate.
    weight_decay : float
        AdamW's decoupled weight decay (≥ 0).
    steps : int, optional
        Total steps; needed by the cosine schedule.
    warmup : int
        Steps of linear warm-up: the rate at step ``s`` (0-based) is multiplied by
        ``min(1, (s + 1) / warmup)``; 0 for none.
    schedule : {"constant", "cosine"}
        ``"cosine"`` multiplies the rate by ``(1 + cos(π s / steps)) / 2``.
    clip_norm : float, optional
        Clip the gradients' global 2-norm to this value.

    Raises
    ------
    ValueError
        If the model has no trainable parameter or an option is out of range.
    """

    def __init__(self, model: nn.Module, *, lr: float = 1e-3, weight_decay: float = 0.0,
                 steps: int | None = None, warmup: int = 0, schedule: str = "constant",
                 clip_norm: float | None = None) -> None:
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no trainable parameters")
        self.optimizer = torch.optim.AdamW(
            self.params, lr=check_positive(lr, "lr"),
            weight_decay=check_positive(weight_decay, "weight_decay", allow_zero=True))
        self.clip_norm = None if clip_norm is None else check_positive(clip_norm, "clip_norm")
        warmup = check_nonnegative_int(warmup, "warmup")
        cosine = check_choice(schedule, "schedule", ("constant", "cosine")) == "cosine"
        if cosine:
            if steps is None:
                raise ValueError("schedule='cosine' needs the number of steps")
            steps = check_positive_int(steps, "steps")
        self.scheduler = None
        if cosine or warmup:
            def factor(s):
                w = min(1.0, (s + 1) / warmup) if warmup else 1.0
                return w * 0.5 * (1 + math.cos(math.pi * s / steps)) if cosine else w

            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    def step(self, inputs: torch.Tensor | tuple[torch.Tensor, ...],
             targets: torch.Tensor) -> float:
        """One update on a batch.

        Parameters
        ----------
        inputs : torch.Tensor or tuple of torch.Tensor
            What ``model`` is called with.
        targets : torch.Tensor
            Integer targets of the model's logits (see :func:`cross_entropy`).

        Returns
        -------
        float
            The batch's loss before the update.
        """
        loss = cross_entropy(self.model(inputs), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.item()


def fit(model: nn.Module, batch: Callable[[torch.Generator], tuple], *, steps: int,
        lr: float = 1e-3, weight_decay: float = 0.0, warmup: int = 0,
        schedule: str = "constant", clip_norm: float | None = None,
        seed: int | torch.Generator = 0,
        evaluate: Callable[[nn.Module], float] | None = None, eval_every: int | None = None,
        progress: bool | None = None) -> TrainResult:
    """Train ``model`` for ``steps`` :class:`Trainer` steps on batches drawn by ``batch``.

    The model is put in training mode, and in evaluation mode for each evaluation and at the
    end. Batches are moved to the device of the model's parameters.

    Parameters
    ----------
    model : torch.nn.Module
        The model; its parameters with ``requires_grad`` are trained.
    batch : callable
        ``batch(generator) -> (inputs, targets)``, drawing from the ``torch.Generator`` it is
        given (one generator for the whole run, seeded with ``seed``), e.g.
        ``lambda g: lm_batch(train, 16, 64, g)``.
    steps : int
        Optimisation steps.
    lr, weight_decay, warmup, schedule, clip_norm
        As for :class:`Trainer`.
    seed : int or torch.Generator
        Seeds the batches' generator.
    evaluate : callable, optional
        ``evaluate(model) -> float``, run without gradients after every ``eval_every`` steps
        and after the last.
    eval_every : int, optional
        Evaluation period; default: only after the last step.
    progress : bool, optional
        Show a tqdm progress bar; ``None`` (default) shows it only when standard error is a
        terminal (not in notebooks or under pytest).

    Returns
    -------
    TrainResult
    """
    steps = check_positive_int(steps, "steps")
    eval_every = steps if eval_every is None else check_positive_int(eval_every, "eval_every")
    gen = torch_generator(seed)
    trainer = Trainer(model, lr=lr, weight_decay=weight_decay, steps=steps, warmup=warmup,
                      schedule=schedule, clip_norm=clip_norm)
    device = _device(model)
    losses, eval_steps, eval_loss = [], [], []
    model.train()
    bar = tqdm(range(1, steps + 1), disable=None if progress is None else not progress,
               leave=False, desc="training")
    for step in bar:
        inputs, targets = batch(gen)
        losses.append(trainer.step(_to(inputs, device), _to(targets, device)))
        if evaluate is not None and (step % eval_every == 0 or step == steps):
            model.eval()
            with torch.no_grad():
                eval_loss.append(float(evaluate(model)))
            eval_steps.append(step)
            model.train()
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    bar.close()
    model.eval()
    return TrainResult(losses, eval_steps, eval_loss)


@torch.no_grad()
def evaluate_lm(model: nn.Module, data: torch.Tensor, seq_len: int, max_windows: int = 64,
                batch_size: int = 16) -> float:
    """Mean next-token cross-entropy (nats) over consecutive windows of ``data``.

    The first ``min(max_windows, (len(data) − 1) // seq_len)`` windows of ``seq_len`` inputs
    (each with its ``seq_len`` next-token targets), in batches of ``batch_size``.

    Parameters
    ----------
    model : torch.nn.Module
        A sequence model, integer ``(B, T)`` → logits ``(B, T, V)``, e.g.
        :class:`~refimpl.experiments.TinyLM`.
    data : torch.Tensor
        Integer tokens ``(N,)``.
    seq_len : int
        Inputs per window.
    max_windows : int
        Most windows evaluated.
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``data`` is shorter than one window of ``seq_len + 1`` tokens.
    """
    seq_len = check_positive_int(seq_len, "seq_len")
    batch_size = check_positive_int(batch_size, "batch_size")
    n = min(check_positive_int(max_windows, "max_windows"), (len(data) - 1) // seq_len)
    if n < 1:
        raise ValueError(f"data ({len(data)} bytes) is shorter than one window of {seq_len + 1}")
    windows = data[: n * seq_len + 1]
    total = 0.0
    device = _device(model)
    for s in range(0, n, batch_size):
        idx = torch.arange(s, min(n, s + batch_size))[:, None] * seq_len + torch.arange(seq_len + 1)
        chunk = windows[idx].to(device)
        total += float(cross_entropy(model(chunk[:, :-1]), chunk[:, 1:], reduction="sum"))
    return total / (n * seq_len)


@torch.no_grad()
def perplexity(model: nn.Module, inputs: torch.Tensor | tuple[torch.Tensor, ...],
               targets: torch.Tensor) -> float:
    """``exp`` of the mean cross-entropy of ``model(inputs)`` against ``targets``.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : torch.Tensor or tuple of torch.Tensor
        What ``model`` is called with (moved to its device), e.g. from :func:`lm_batch`.
    targets : torch.Tensor
        Integer targets of the logits.

    Returns
    -------
    float
        Perplexity per target token.
    """
    device = _device(model)
    return float(torch.exp(cross_entropy(model(_to(inputs, device)), _to(targets, device))))
