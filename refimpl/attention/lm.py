"""A tiny byte-level decoder-only language model whose attention variant is a parameter."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from refimpl.attention._checks import positive_int
from refimpl.attention._core import RMSNorm
from refimpl.attention.cache import KVCache
from refimpl.attention.formulas import make_attention


class _Block(nn.Module):
    def __init__(self, d_model: int, attention: nn.Module, mlp_ratio: int):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(d_model), RMSNorm(d_model)
        self.attn = attention
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model, bias=False), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model, bias=False))

    def forward(self, x, cache=None):
        x = x + self.attn(self.norm1(x), cache)
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    """Pre-norm decoder: byte embedding → ``n_layers`` × (attention, MLP) → tied output head.

    ``attention`` is a variant name from :data:`refimpl.attention.KINDS` and
    ``attention_kwargs`` its configuration (as for :func:`make_attention`). Positions enter
    only through each variant's RoPE. ``forward(tokens)`` is the training forward;
    ``forward(tokens, caches)`` continues from the cached prefix (``caches`` from
    :meth:`new_caches`) and gives the same logits as the full forward.
    """

    def __init__(self, d_model: int = 64, n_layers: int = 2, attention: str = "mha",
                 attention_kwargs: dict | None = None, *, vocab_size: int = 256, mlp_ratio: int = 4,
                 seed: int = 0):
        super().__init__()
        self.d_model = positive_int(d_model, "d_model")
        self.n_layers = positive_int(n_layers, "n_layers")
        self.vocab_size = positive_int(vocab_size, "vocab_size")
        self.attention = attention
        kw = dict(attention_kwargs or {})
        # Parameters drawn from a private generator: the same seed gives the same model.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embed = nn.Embedding(vocab_size, d_model)
            nn.init.normal_(self.embed.weight, std=d_model**-0.5)
            self.blocks = nn.ModuleList(
                _Block(d_model, make_attention(attention, d_model, **kw), mlp_ratio)
                for _ in range(n_layers))
        self.norm = RMSNorm(d_model)

    def new_caches(self) -> list[KVCache]:
        return [b.attn.new_cache() for b in self.blocks]

    @property
    def cache_elements_per_token(self) -> int:
        """KV-cache elements per token summed over layers."""
        return sum(b.attn.cache_elements_per_token for b in self.blocks)

    def forward(self, tokens: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError("tokens must be an integer torch tensor (B, T)")
        if tokens.ndim != 2 or tokens.numel() == 0:
            raise ValueError(
                f"tokens must have shape (B, T) with B, T ≥ 1; got {tuple(tokens.shape)}")
        if int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size:
            raise ValueError(f"tokens must lie in [0, {self.vocab_size})")
        if caches is not None and len(caches) != self.n_layers:
            raise ValueError(f"need one cache per layer ({self.n_layers}); got {len(caches)}")
        x = self.embed(tokens)
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.norm(x) @ self.embed.weight.T


def stdlib_bytes(max_bytes: int = 2_000_000) -> torch.Tensor:
    """Bytes of the Python standard library's top-level ``*.py`` files, in sorted order.

    Text every machine with Python has; the exact content depends on the Python version.
    """
    root = Path(os.path.dirname(os.__file__))
    out = bytearray()
    for path in sorted(root.glob("*.py")):
        out += path.read_bytes()
        if len(out) >= max_bytes:
            break
    return torch.frombuffer(out[:max_bytes], dtype=torch.uint8).long()


class TrainResult(NamedTuple):
    steps: list[int]
    train_loss: list[float]
    eval_loss: list[float]
    final_eval_loss: float


@torch.no_grad()
def evaluate_lm(model: TinyLM, data: torch.Tensor, seq_len: int, max_windows: int = 64,
                batch_size: int = 16) -> float:
    """Mean next-byte cross-entropy (nats) over up to ``max_windows`` windows of ``data``."""
    n = min(max_windows, (len(data) - 1) // seq_len)
    if n < 1:
        raise ValueError(f"data ({len(data)} bytes) is shorter than one window of {seq_len + 1}")
    windows = data[: n * seq_len + 1]
    total = 0.0
    device = next(model.parameters()).device
    for s in range(0, n, batch_size):
        idx = torch.arange(s, min(n, s + batch_size))[:, None] * seq_len + torch.arange(seq_len + 1)
        chunk = windows[idx].to(device)
        logits = model(chunk[:, :-1])
        total += float(nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="sum"))
    return total / (n * seq_len)


def train_lm(model: TinyLM, train: torch.Tensor, held_out: torch.Tensor, *, steps: int = 300,
             batch_size: int = 16, seq_len: int = 64, lr: float = 3e-3, seed: int = 0,
             eval_every: int = 50) -> TrainResult:
    """AdamW, cosine decay, random windows of ``train``; held-out loss every ``eval_every``."""
    steps = positive_int(steps, "steps")
    batch_size = positive_int(batch_size, "batch_size")
    seq_len = positive_int(seq_len, "seq_len")
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    rec_steps, train_loss, eval_loss = [], [], []
    model.train()
    for step in range(1, steps + 1):
        starts = torch.randint(0, len(train) - seq_len - 1, (batch_size,), generator=gen)
        chunk = train[starts[:, None] + torch.arange(seq_len + 1)].to(device)
        logits = model(chunk[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            model.eval()
            rec_steps.append(step)
            train_loss.append(loss.item())
            eval_loss.append(evaluate_lm(model, held_out, seq_len))
            model.train()
    model.eval()
    return TrainResult(rec_steps, train_loss, eval_loss, eval_loss[-1])


def compare_variants(configs: dict[str, tuple[str, dict]], train: torch.Tensor,
                     held_out: torch.Tensor, *, d_model: int = 64, n_layers: int = 2,
                     seed: int = 0, device: str = "cpu", **train_kwargs) -> dict[str, dict]:
    """Train one :class:`TinyLM` per entry ``name: (kind, attention_kwargs)`` on the same data.

    Every model starts from the same seed and sees the same batches. Returns, per name, the
    parameter count, KV-cache elements per token (all layers) and the :class:`TrainResult`.
    """
    out = {}
    for name, (kind, kw) in configs.items():
        model = TinyLM(d_model, n_layers, kind, kw, seed=seed).to(device)
        result = train_lm(model, train, held_out, seed=seed, **train_kwargs)
        out[name] = {"kind": kind, "params": sum(p.numel() for p in model.parameters()),
                     "cache_per_token": model.cache_elements_per_token, "result": result}
    return out
