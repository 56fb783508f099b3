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
