"""logreg-digits: softmax regression on the 8x8 handwritten digits (docs/harness-contract.md).

The optimizer gets ``params = [W, b]`` (W: 64x10, b: 10, float64) and, once per minibatch,
``grads = [dL/dW, dL/db]`` of the mean cross-entropy over the minibatch. Pixels are scaled from
0..16 to 0..1. The seed drives the initialisation of W (normal, sd 0.01; b = 0) and the order of
the minibatches (a fresh permutation of the training set every epoch; the last partial batch of
each epoch is dropped).
"""

from __future__ import annotations

import _harnesslib as hl
import numpy as np

N_FEATURES, N_CLASSES = 64, 10
BATCH_SIZE = 32
EPOCHS = 50
INIT_SD = 0.01
PARAMS = {"W": (N_FEATURES, N_CLASSES), "b": (N_CLASSES,)}


def load_split(which: str) -> tuple[np.ndarray, np.ndarray]:
    """Features in [0, 1] (n, 64) and integer labels (n,) of the train or test file."""
    arrays = hl.load_data_npz(
        hl.data_path(which), {"X": (np.dtype(np.uint8), 2), "y": (np.dtype(np.uint8), 1)}
    )
    return arrays["X"].astype(np.float64) / 16.0, arrays["y"].astype(np.int64)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss_and_grads(
    w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[float, list[np.ndarray]]:
    """Mean cross-entropy over the batch and its gradients with respect to W and b."""
    log_p = log_softmax(x @ w + b)
    rows = np.arange(y.size)
    loss = -float(log_p[rows, y].mean())
    delta = np.exp(log_p)
    delta[rows, y] -= 1.0
    delta /= y.size
    return loss, [x.T @ delta, delta.sum(axis=0)]


def mean_loss(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return -float(log_softmax(x @ w + b)[np.arange(y.size), y].mean())


def accuracy(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(x @ w + b, axis=1) == y))


def ingest() -> None:
    seed = hl.run_seed()
    config = hl.run_config()
    x, y = load_split("train")
    streams = hl.rng_streams(seed, ("init", "order"))
    w = streams["init"].normal(0.0, INIT_SD, PARAMS["W"])
    b = np.zeros(PARAMS["b"])
    params = [w, b]

    hl.seed_global_state(seed)
    factory = hl.load_entry(config)
    hl.seed_global_state(seed)
    optimizer = hl.build_optimizer(factory, params, config)
    guard = hl.StepGuard(list(PARAMS), params)

    batches = y.size // BATCH_SIZE
    curve = hl.Curve(EPOCHS * batches)
    curve.start(mean_loss(w, b, x, y))
    step = 0
    for _ in range(EPOCHS):
        order = streams["order"].permutation(y.size)
        for i in range(batches):
            batch = order[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
            loss, grads = loss_and_grads(w, b, x[batch], y[batch])
            hl.check_loss(loss, step)
            step += 1
            guard.step(optimizer, grads, step)
            curve.add(step, loss)
    hl.check_loss(mean_loss(w, b, x, y), step)
    hl.write_ingest_outputs({"W": w, "b": b}, curve)


def score() -> None:
    params = hl.load_params(PARAMS)
    w, b = params["W"], params["b"]
    x_train, y_train = load_split("train")
    x_test, y_test = load_split("test")
    metrics = {
        "test_accuracy": accuracy(w, b, x_test, y_test),
        "train_loss": mean_loss(w, b, x_train, y_train),
    }
    hl.write_metrics(metrics, hl.load_curve())


if __name__ == "__main__":
    hl.main(ingest, score)
