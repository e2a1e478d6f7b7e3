"""Lion: evolved sign momentum (Chen et al., 2023).

This package is broken on purpose: the helper module ``optim_utils`` was left out of the
archive, so importing the entry fails and every run ends with an ``entry_import`` error.
"""

import numpy as np
from optim_utils import sign_update  # not shipped: the import fails


class Lion:
    """c = b1 m + (1 - b1) g;  p -= lr (sign(c) + wd p);  m = b2 m + (1 - b2) g."""

    def __init__(
        self,
        params: list[np.ndarray],
        *,
        lr: float = 1e-4,
        beta1: float = 0.9,
        beta2: float = 0.99,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = params
        self.lr, self.beta1, self.beta2, self.wd = lr, beta1, beta2, weight_decay
        self.m = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        for param, grad, m in zip(self.params, grads, self.m, strict=True):
            sign_update(param, grad, m, self.lr, self.beta1, self.beta2, self.wd)
