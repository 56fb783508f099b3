"""Chapter 10: optimizers for factored and constrained parameters.

Optimizers subclass ``torch.optim.Optimizer``. Modules: :mod:`~refimpl.optim.riemannian`
(:class:`RiemannianSGD`, Riemannian gradient descent with a retraction, used by RiemannLoRA).
Importing this subpackage imports torch.
"""

from refimpl.optim.riemannian import Retractable, RiemannianSGD

__all__ = ["Retractable", "RiemannianSGD"]
