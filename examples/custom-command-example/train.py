"""Ridge regression on synthetic data, with its own metrics (Reprise benchmark custom-command).

Reads the seed from REPRISE_SEED, draws a fresh data set from it (the true weights are fixed),
fits ridge regression in closed form on 400 points, and writes the validation mean squared error
and R² on 200 held-out points to $REPRISE_OUTPUT/metrics.json.
"""

import json
import os
from pathlib import Path

import numpy as np

N_TRAIN, N_VAL, N_FEATURES = 400, 200, 20
NOISE_SD = 0.5
RIDGE = 1.0
TRUE_WEIGHTS_SEED = 12345


def main() -> None:
    seed = int(os.environ["REPRISE_SEED"])
    out = Path(os.environ["REPRISE_OUTPUT"])
    true_w = np.random.default_rng(TRUE_WEIGHTS_SEED).normal(size=N_FEATURES)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_TRAIN + N_VAL, N_FEATURES))
    y = x @ true_w + rng.normal(0.0, NOISE_SD, N_TRAIN + N_VAL)
    x_train, y_train, x_val, y_val = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]

    gram = x_train.T @ x_train + RIDGE * np.eye(N_FEATURES)
    w = np.linalg.solve(gram, x_train.T @ y_train)
    residual = y_val - x_val @ w
    mse = float(residual @ residual / N_VAL)
    r2 = 1.0 - mse / float(np.var(y_val))
    (out / "metrics.json").write_text(json.dumps({"val_mse": mse, "val_r2": r2}))
    print(f"seed {seed}: val_mse {mse:.4f}, val_r2 {r2:.4f}")


if __name__ == "__main__":
    main()
