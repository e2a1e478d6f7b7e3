"""The reference optimizers of the calibration (benchmarks/_tools/calibrate.py).

Textbook update rules, written against the optimizer interface of docs (PACKAGE_FORMAT.md):
``Optimizer(params, **hyperparameters)`` and ``step(grads)`` updating ``params`` in place.
"""

from __future__ import annotations

import numpy as np


class SGD:
    """Plain stochastic gradient descent: p -= lr * g."""

    def __init__(self, params: list[np.ndarray], *, lr: float) -> None:
        self.params = params
        self.lr = float(lr)

    def step(self, grads: list[np.ndarray]) -> None:
        for param, grad in zip(self.params, grads, strict=True):
            param -= self.lr * grad


class Momentum:
    """SGD with heavy-ball momentum (PyTorch's convention): v = mu v + g; p -= lr v."""

    def __init__(self, params: list[np.ndarray], *, lr: float, momentum: float = 0.9) -> None:
        self.params = params
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        for param, grad, velocity in zip(self.params, grads, self.velocity, strict=True):
            velocity *= self.momentum
            velocity += grad
            param -= self.lr * velocity


class Adam:
    """Adam (Kingma and Ba, 2015) with bias correction."""

    def __init__(
        self,
        params: list[np.ndarray],
        *,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = (
            float(lr),
            float(beta1),
            float(beta2),
            float(eps),
        )
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        correction1 = 1.0 - self.beta1**self.t
        correction2 = 1.0 - self.beta2**self.t
        for param, grad, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= self.beta1
            m += (1.0 - self.beta1) * grad
            v *= self.beta2
            v += (1.0 - self.beta2) * grad * grad
            param -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)
