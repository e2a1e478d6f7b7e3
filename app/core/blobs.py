"""A content-addressed blob store on the local filesystem (a shared volume when replicas span
machines). Blobs are named by their sha256 and written by atomic rename, so a reader never sees
half a file and two writers of the same content cannot conflict."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: Path, scratch: Path) -> None:
        self.root = root
        self.scratch = scratch
        root.mkdir(parents=True, exist_ok=True)
        scratch.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self.path(sha256).stat().st_size

    def adopt(self, source: Path, sha256: str) -> bool:
        """Move ``source`` (already hashed, on the same filesystem) into the store.

        Returns True when this call created the blob, False when it already existed (the source
        is then removed), so a caller that fails later knows whether to delete it again.
        """
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            source.unlink(missing_ok=True)
            return False
        os.chmod(source, 0o444)
        os.replace(source, target)
        return True

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            fd, tmp = tempfile.mkstemp(dir=self.scratch, prefix="blob-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.adopt(Path(tmp), sha)
        return sha

    def put_file(self, source: Path) -> str:
        """Copy a file into the store; returns its sha256."""
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.scratch, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            self.adopt(Path(tmp), sha)
            return sha
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def iter_chunks(self, sha256: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        with self.path(sha256).open("rb") as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def new_scratch_dir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(dir=self.scratch, prefix=prefix))

    def remove_scratch(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
