"""Adam: adaptive moment estimation (Kingma and Ba, 2015), with bias correction."""

import numpy as np


class Adam:
    """Per-coordinate steps from running means of the gradient and its square."""

    def __init__(
        self,
        params: list[np.ndarray],
        *,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        if not lr > 0 or not 0 <= beta1 < 1 or not 0 <= beta2 < 1 or not eps > 0:
            raise ValueError("need lr > 0, 0 <= beta1, beta2 < 1 and eps > 0")
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
