"""Make the fixed problem instance of quadratic-illcond: ``data/problem.npz``.

f(x) = 1/2 (x - x_star)^T A (x - x_star), with A = Q diag(eigenvalues) Q^T, Q a random orthogonal
matrix (QR of a Gaussian matrix, signs fixed), eigenvalues log-spaced from 1e-3 to 1 (condition
number 1e3), x_star a standard normal vector; all drawn from the constant seed ``PROBLEM_SEED``.
The instance is stored rather than regenerated in the harness so that it does not depend on the
LAPACK build of whichever numpy runs the benchmark. ``--check`` verifies the committed file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from datafiles import npz_bytes, sha256_file

PROBLEM_SEED = 20240607
DIMENSION = 100
EIGEN_MIN, EIGEN_MAX = 1e-3, 1.0
PATH = Path(__file__).resolve().parent.parent / "quadratic-illcond" / "data" / "problem.npz"


def make_problem() -> dict[str, np.ndarray]:
    """The arrays of the instance: A, x_star, eigenvalues."""
    rng = np.random.default_rng(PROBLEM_SEED)
    q, r = np.linalg.qr(rng.standard_normal((DIMENSION, DIMENSION)))
    q = q * np.sign(np.diag(r))  # the unique Q with a positive diagonal R
    eigenvalues = np.logspace(np.log10(EIGEN_MIN), np.log10(EIGEN_MAX), DIMENSION)
    a = (q * eigenvalues) @ q.T
    a = 0.5 * (a + a.T)  # exactly symmetric
    x_star = rng.standard_normal(DIMENSION)
    return {"A": a, "x_star": x_star, "eigenvalues": eigenvalues}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="verify, do not write")
    args = parser.parse_args()
    data = npz_bytes(make_problem())
    if args.check:
        same = PATH.exists() and PATH.read_bytes() == data
        print(("ok" if same else "DIFFERS (another LAPACK build?)") + f"  {PATH}")
        sys.exit(0 if same else 1)
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_bytes(data)
    print(f"{sha256_file(PATH)}  {PATH}")


if __name__ == "__main__":
    main()
