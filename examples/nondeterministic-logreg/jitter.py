"""SGD with a randomly jittered step size, drawn from the operating system's entropy pool.

The jitter comes from ``random.SystemRandom`` (os.urandom), which no seed controls: two runs with
the same seed take different steps. This package exists to show how Reprise reports a
non-deterministic submission; do not copy the pattern.
"""

import random

import numpy as np


class JitteredSGD:
    """p <- p - lr * (1 + u) * g with u uniform in [-jitter, jitter], fresh each step."""

    def __init__(self, params: list[np.ndarray], *, lr: float, jitter: float = 0.5) -> None:
        if not lr > 0 or not 0 <= jitter < 1:
            raise ValueError("need lr > 0 and 0 <= jitter < 1")
        self.params = params
        self.lr = float(lr)
        self.jitter = float(jitter)
        self.entropy = random.SystemRandom()  # unseeded on purpose

    def step(self, grads: list[np.ndarray]) -> None:
        scale = self.lr * (1.0 + self.entropy.uniform(-self.jitter, self.jitter))
        for param, grad in zip(self.params, grads, strict=True):
            param -= scale * grad
