"""Plain stochastic gradient descent."""

import numpy as np


class SGD:
    """p <- p - lr * g, for every parameter array, in place."""

    def __init__(self, params: list[np.ndarray], *, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.params = params
        self.lr = float(lr)

    def step(self, grads: list[np.ndarray]) -> None:
        for param, grad in zip(self.params, grads, strict=True):
            param -= self.lr * grad
