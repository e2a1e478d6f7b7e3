"""Make the fixed train/test split of the 8x8 digits for logreg-digits and mlp-digits.

The data is the copy of the UCI "Optical Recognition of Handwritten Digits" test set (E. Alpaydin,
C. Kaynak, 1998; CC BY 4.0) that ships inside scikit-learn as
``sklearn/datasets/data/digits.csv.gz``. Fetch a wheel without installing it, then run::

    pip download scikit-learn --no-deps -d /tmp/skl
    python benchmarks/_tools/make_digits_split.py /tmp/skl/scikit_learn-*.whl

The split is stratified, 30 % of every class to the test set, drawn with the constant seed
``SPLIT_SEED``; both benchmark folders get identical files (each folder must be self-contained).
The script prints the sha256 of each file for the manifests; ``--check`` only verifies that the
committed files are byte-identical to what the script would write.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from datafiles import npz_bytes, sha256_file

SPLIT_SEED = 20240601
TEST_FRACTION = 0.3
MEMBER = "sklearn/datasets/data/digits.csv.gz"
BENCHMARKS = Path(__file__).resolve().parent.parent
TARGETS = ("logreg-digits", "mlp-digits")


def read_digits(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (n, 64) uint8 in 0..16 and labels (n,) uint8 from the CSV inside the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        raw = gzip.decompress(archive.read(MEMBER))
    table = np.loadtxt(io.StringIO(raw.decode("ascii")), delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65):
        raise SystemExit(f"unexpected digits table shape {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit("digits values out of range")
    return pixels.astype(np.uint8), labels.astype(np.uint8)


def split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test indices (each sorted), 30 % of each class to test."""
    rng = np.random.default_rng(SPLIT_SEED)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        members = members[rng.permutation(members.size)]
        n_test = round(TEST_FRACTION * members.size)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wheel", type=Path, help="a scikit-learn wheel (pip download)")
    parser.add_argument("--check", action="store_true", help="verify, do not write")
    args = parser.parse_args()

    pixels, labels = read_digits(args.wheel)
    train, test = split(labels)
    files = {
        "train.npz": npz_bytes({"X": pixels[train], "y": labels[train]}),
        "test.npz": npz_bytes({"X": pixels[test], "y": labels[test]}),
    }
    print(f"train: {train.size} images, test: {test.size} images")
    mismatches = 0
    for benchmark in TARGETS:
        for name, data in files.items():
            path = BENCHMARKS / benchmark / "data" / name
            if args.check:
                same = path.exists() and path.read_bytes() == data
                mismatches += not same
                print(f"{'ok' if same else 'DIFFERS'}  {path.relative_to(BENCHMARKS)}")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            print(f"{sha256_file(path)}  {path.relative_to(BENCHMARKS)}")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
