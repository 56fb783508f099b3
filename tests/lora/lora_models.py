"""Tiny models shared by the chapter-09 tests."""

import torch
from torch import nn


class Tiny(nn.Module):
    """Two blocks with named linear layers of different shapes (as q/v/fc in a transformer)."""

    def __init__(self, d=12, h=20, out=5, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.q = nn.Linear(d, d)
        self.v = nn.Linear(d, d, bias=False)
        self.fc = nn.Linear(d, h)
        self.head = nn.Linear(h, out)

    def forward(self, x):
        z = torch.tanh(self.q(x)) + self.v(x)
        return self.head(torch.relu(self.fc(z)))


def batch(n=7, d=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g)


class TinyConv(nn.Module):
    """A small conv net: a 3×3 conv, a strided (optionally dilated / reflect-padded) 3×3 conv,
    a linear head."""

    def __init__(self, dilation=1, padding_mode="zeros", seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 6, 3, stride=2, padding=dilation, dilation=dilation,
                            padding_mode=padding_mode, bias=False)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        z = self.c2(torch.relu(self.c1(x)))
        return self.head(z.mean((2, 3)))


def images(n=2, size=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


class TinyAttention(nn.Module):
    """One multi-head self-attention block (no positional encoding) with q/k/v/o projections."""

    def __init__(self, d=12, heads=3, bias=True, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.heads = heads
        self.q, self.k = nn.Linear(d, d, bias=bias), nn.Linear(d, d, bias=bias)
        self.v, self.o = nn.Linear(d, d, bias=bias), nn.Linear(d, d, bias=bias)

    def forward(self, x):
        def split(t):
            return t.unflatten(-1, (self.heads, -1)).transpose(-2, -3)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.softmax(q @ k.mT / q.shape[-1] ** 0.5, -1)
        return self.o((att @ v).transpose(-2, -3).flatten(-2))
