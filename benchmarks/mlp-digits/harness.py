"""mlp-digits: a small tanh MLP on the 8x8 handwritten digits (docs/harness-contract.md).

Network: 64 inputs -> 32 tanh units -> 10 softmax outputs. The optimizer gets
``params = [W1, b1, W2, b2]`` (64x32, 32, 32x10, 10; float64) and, once per minibatch, the
gradients of the mean cross-entropy over the minibatch in the same order. Pixels are scaled from
0..16 to 0..1. The seed drives the Glorot-uniform initialisation of W1 and W2 (biases start at 0)
and the order of the minibatches (a fresh permutation every epoch, the last partial batch
dropped).
"""

from __future__ import annotations

import _harnesslib as hl
import numpy as np

N_FEATURES, N_HIDDEN, N_CLASSES = 64, 32, 10
BATCH_SIZE = 32
EPOCHS = 15
PARAMS = {
    "W1": (N_FEATURES, N_HIDDEN),
    "b1": (N_HIDDEN,),
    "W2": (N_HIDDEN, N_CLASSES),
    "b2": (N_CLASSES,),
}


def load_split(which: str) -> tuple[np.ndarray, np.ndarray]:
    """Features in [0, 1] (n, 64) and integer labels (n,) of the train or test file."""
    arrays = hl.load_data_npz(
        hl.data_path(which), {"X": (np.dtype(np.uint8), 2), "y": (np.dtype(np.uint8), 1)}
    )
    return arrays["X"].astype(np.float64) / 16.0, arrays["y"].astype(np.int64)


def forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden activations and log-probabilities."""
    w1, b1, w2, b2 = params
    hidden = np.tanh(x @ w1 + b1)
    logits = hidden @ w2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    return hidden, shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss_and_grads(
    params: list[np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[float, list[np.ndarray]]:
    """Mean cross-entropy over the batch and its gradients, in the order of ``params``."""
    _, _, w2, _ = params
    hidden, log_p = forward(params, x)
    rows = np.arange(y.size)
    loss = -float(log_p[rows, y].mean())
    delta = np.exp(log_p)
    delta[rows, y] -= 1.0
    delta /= y.size
    delta_hidden = (delta @ w2.T) * (1.0 - hidden * hidden)
    return loss, [x.T @ delta_hidden, delta_hidden.sum(axis=0), hidden.T @ delta, delta.sum(axis=0)]


def mean_loss(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return -float(forward(params, x)[1][np.arange(y.size), y].mean())


def accuracy(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(forward(params, x)[1], axis=1) == y))


def initial_params(rng: np.random.Generator) -> list[np.ndarray]:
    """Glorot-uniform weights, zero biases."""
    params = []
    for name, shape in PARAMS.items():
        if name.startswith("W"):
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            params.append(rng.uniform(-limit, limit, shape))
        else:
            params.append(np.zeros(shape))
    return params


def ingest() -> None:
    seed = hl.run_seed()
    config = hl.run_config()
    x, y = load_split("train")
    streams = hl.rng_streams(seed, ("init", "order"))
    params = initial_params(streams["init"])
    arrays = tuple(params)

    hl.seed_global_state(seed)
    factory = hl.load_entry(config)
    hl.seed_global_state(seed)
    optimizer = hl.build_optimizer(factory, params, config)
    guard = hl.StepGuard(list(PARAMS), params)

    batches = y.size // BATCH_SIZE
    curve = hl.Curve(EPOCHS * batches)
    curve.start(mean_loss(list(arrays), x, y))
    step = 0
    for _ in range(EPOCHS):
        order = streams["order"].permutation(y.size)
        for i in range(batches):
            batch = order[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
            loss, grads = loss_and_grads(list(arrays), x[batch], y[batch])
            hl.check_loss(loss, step)
            step += 1
            guard.step(optimizer, grads, step)
            curve.add(step, loss)
    hl.check_loss(mean_loss(list(arrays), x, y), step)
    hl.write_ingest_outputs(dict(zip(PARAMS, arrays, strict=True)), curve)


def score() -> None:
    loaded = hl.load_params(PARAMS)
    params = [loaded[name] for name in PARAMS]
    x_test, y_test = load_split("test")
    metrics = {
        "test_accuracy": accuracy(params, x_test, y_test),
        "test_loss": mean_loss(params, x_test, y_test),
    }
    hl.write_metrics(metrics, hl.load_curve())


if __name__ == "__main__":
    hl.main(ingest, score)
