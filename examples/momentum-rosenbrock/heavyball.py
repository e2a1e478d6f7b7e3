"""Polyak's heavy-ball method (SGD with momentum)."""

import numpy as np


class HeavyBall:
    """v <- momentum * v + g;  p <- p - lr * v  (the convention of torch.optim.SGD)."""

    def __init__(self, params: list[np.ndarray], *, lr: float, momentum: float = 0.9) -> None:
        if not lr > 0 or not 0 <= momentum < 1:
            raise ValueError("need lr > 0 and 0 <= momentum < 1")
        self.params = params
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        for param, grad, velocity in zip(self.params, grads, self.velocity, strict=True):
            velocity *= self.momentum
            velocity += grad
            param -= self.lr * velocity
