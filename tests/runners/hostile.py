"""Hostile inputs for the exploit corpus: package archives, planted output files, JSON documents.

Every archive builder writes one file into ``directory`` and returns its path. A hostile
archive is an honest package (``HONEST_FILES``) plus exactly one attack, placed last, so a
refusal can only come from that attack. Builders write nothing outside ``directory``. An attack
that would *write* through a link or an absolute path takes its target from the caller: pass a
scratch path, never a real system file (the tests may run as root).

``fmt`` picks the container: ``"tar.gz"`` and ``"zip"`` are packages as users upload them,
``"tar"`` is an uncompressed stream like Docker's ``get_archive``. Nothing here imports pytest.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import stat
import struct
import tarfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Fmt = Literal["tar.gz", "zip", "tar"]
Kind = Literal["file", "dir", "symlink", "hardlink", "chr", "fifo"]

MANIFEST = b"""format = 1

[package]
name = "hostile-probe"
version = "1.0.0"
license = "MIT"

[entry]
optimizer = "nesterov:Nesterov"
"""
MODULE = b"""class Nesterov:
    def __init__(self, params, *, lr=0.1):
        self.params, self.lr = params, lr

    def step(self, grads):
        for p, g in zip(self.params, grads):
            p -= self.lr * g
"""
HONEST_FILES: dict[str, bytes] = {
    "reprise.toml": MANIFEST,
    "nesterov.py": MODULE,
    "README.md": b"# Probe\n\nA package used by the exploit corpus.\n",
    "data/notes.txt": b"blank " * 4096,  # compresses well, but far under any bomb threshold
}
ESCAPE_NAME = "reprise-escape.txt"  # what escaping entries try to create beside the destination


@dataclass(frozen=True)
class Spec:
    """One archive member; ``target`` is a link's target."""

    name: str
    data: bytes = b""
    kind: Kind = "file"
    mode: int = 0o644
    target: str = ""


def honest_specs(top: str = "") -> list[Spec]:
    """The members of the honest package, under ``top`` ("" for the root, "pkg/", "./")."""
    specs = [Spec(top.rstrip("/"), kind="dir", mode=0o755)] if top else []
    specs.append(Spec(f"{top}data", kind="dir", mode=0o755))
    specs += [Spec(top + name, data) for name, data in HONEST_FILES.items()]
    return specs


def build(directory: Path, stem: str, specs: list[Spec], fmt: Fmt = "tar.gz") -> Path:
    """Write ``specs`` as ``directory/stem.<fmt>``."""
    path = directory / f"{stem}.{fmt}"
    if fmt == "zip":
        _write_zip(path, specs)
    else:
        payload = _tar_bytes(specs)
        path.write_bytes(gzip.compress(payload, mtime=0) if fmt == "tar.gz" else payload)
    return path


def _tar_bytes(specs: list[Spec], tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tar_format, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for spec in specs:
            info = tarfile.TarInfo(spec.name)
            info.type, info.mode, info.linkname = types[spec.kind], spec.mode, spec.target
            info.devmajor, info.devminor = (1, 3) if spec.kind == "chr" else (0, 0)
            info.size = len(spec.data) if spec.kind == "file" else 0
            tar.addfile(info, io.BytesIO(spec.data) if spec.kind == "file" else None)
    return raw.getvalue()


def _write_zip(path: Path, specs: list[Spec]) -> None:
    modes = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK,
             "chr": stat.S_IFCHR, "fifo": stat.S_IFIFO}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of one attack
        for spec in specs:
            if spec.kind == "hardlink":
                raise ValueError("a zip cannot hold a hard link")
            name = spec.name + "/" if spec.kind == "dir" and spec.name else spec.name
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3  # unix, so external_attr carries a mode
            info.external_attr = (modes[spec.kind] | spec.mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, spec.target.encode() if spec.kind == "symlink" else spec.data)


def _patch_zip(path: Path, name: str, *, size: int | None = None, flags: int = 0) -> None:
    """Rewrite a member's declared size or OR its flag bits, in both of its headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(name).header_offset
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    for offset, size_at, flag_at in ((local, 22, 6), (central, 24, 8)):
        if size is not None:
            struct.pack_into("<I", data, offset + size_at, size)
        (old,) = struct.unpack_from("<H", data, offset + flag_at)
        struct.pack_into("<H", data, offset + flag_at, old | flags)
    path.write_bytes(bytes(data))


def _hostile(directory: Path, stem: str, attack: list[Spec], fmt: Fmt) -> Path:
    return build(directory, stem, honest_specs() + attack, fmt)


# -- honest packages ------------------------------------------------------------------------


def honest_package(directory: Path, *, fmt: Fmt = "tar.gz", top: str | None = None) -> Path:
    """A minimal valid package; ``top`` puts it in one folder ("pkg") or behind "./" (".")."""
    prefix = "" if top is None else f"{top}/"
    stem = "honest" if top is None else "honest-dot" if top == "." else f"honest-{top}"
    return build(directory, stem, honest_specs(prefix), fmt)


# -- names and paths ------------------------------------------------------------------------


def traversal_tar(
    directory: Path, *, escape: str = f"../{ESCAPE_NAME}", fmt: Fmt = "tar.gz"
) -> Path:
    """A member named ``../reprise-escape.txt``: it lands beside the destination if obeyed."""
    return _hostile(directory, "traversal", [Spec(escape, b"escaped\n")], fmt)


def zip_traversal(directory: Path, *, escape: str = f"../{ESCAPE_NAME}") -> Path:
    """The zip form of ``traversal_tar`` (zipfile itself would silently strip the '..')."""
    return traversal_tar(directory, escape=escape, fmt="zip")


def absolute_path_tar(directory: Path, target: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A member named by the absolute path ``target``."""
    return _hostile(directory, "absolute", [Spec(str(target), b"escaped\n")], fmt)


def deep_nesting(directory: Path, *, depth: int = 40, fmt: Fmt = "tar.gz") -> Path:
    """A file ``depth`` folders down (``d/d/.../deep.txt``)."""
    return _hostile(directory, "deep", [Spec("d/" * depth + "deep.txt", b"deep\n")], fmt)


def long_name(directory: Path, *, length: int = 2000, fmt: Fmt = "tar.gz") -> Path:
    """A member whose name is ``length`` bytes long, in 200-byte components."""
    name = "/".join(["n" * 199] * (length // 200 + 1))
    return _hostile(directory, "long-name", [Spec(name[:length], b"long\n")], fmt)


def invalid_utf8_name(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A member named ``bad\\xff.py``: bytes that are not UTF-8."""
    if fmt != "zip":
        path = directory / f"invalid-utf8.{fmt}"
        payload = _tar_bytes([*honest_specs(), Spec("bad\udcff.py")], tarfile.GNU_FORMAT)
        path.write_bytes(gzip.compress(payload, mtime=0) if fmt == "tar.gz" else payload)
        return path
    path = _hostile(directory, "invalid-utf8", [Spec("bad_.py")], fmt)
    path.write_bytes(path.read_bytes().replace(b"bad_.py", b"bad\xff.py"))
    return path


def control_char_name(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A member whose name holds a newline and a terminal escape (log injection)."""
    return _hostile(directory, "control-char", [Spec("evil\n\x1b[31m.py")], fmt)


def backslash_name(directory: Path, *, fmt: Fmt = "zip") -> Path:
    r"""A member named ``..\reprise-escape.txt``: a traversal on Windows-minded extractors."""
    return _hostile(directory, "backslash", [Spec(f"..\\{ESCAPE_NAME}", b"escaped\n")], fmt)


def drive_letter_name(directory: Path, *, fmt: Fmt = "zip") -> Path:
    """A member named ``C:/reprise-escape.txt``."""
    return _hostile(directory, "drive", [Spec(f"C:/{ESCAPE_NAME}", b"escaped\n")], fmt)


def duplicate_entry(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A second ``reprise.toml`` member that would silently overwrite the first."""
    return _hostile(directory, "duplicate", [Spec("reprise.toml", b"format = 99\n")], fmt)


def file_folder_clash(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """``nesterov.py`` is a file, and ``nesterov.py/x.py`` needs it to be a folder."""
    return _hostile(directory, "clash", [Spec("nesterov.py/x.py", b"x = 1\n")], fmt)


# -- member types and modes -----------------------------------------------------------------


def symlink_tar(directory: Path, target: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A symlink ``escape`` -> ``target``, then a file written through it."""
    attack = [Spec("escape", kind="symlink", target=str(target)),
              Spec(f"escape/{ESCAPE_NAME}", b"escaped\n")]
    return _hostile(directory, "symlink", attack, fmt)


def zip_symlink(directory: Path, *, target: str = "/etc/passwd") -> Path:
    """A zip member whose mode (external_attr) says symlink; zipfile would write a plain file."""
    return _hostile(directory, "zip-symlink", [Spec("passwd", kind="symlink", target=target)],
                    "zip")


def hardlink_tar(directory: Path, *, target: str = "/etc/passwd", fmt: Fmt = "tar.gz") -> Path:
    """A hard link ``passwd`` -> ``target`` (read attack: the package would see that file)."""
    return _hostile(directory, "hardlink", [Spec("passwd", kind="hardlink", target=target)], fmt)


def device_tar(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A character device ``null`` (1, 3)."""
    return _hostile(directory, "device", [Spec("null", kind="chr")], fmt)


def fifo_tar(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A FIFO ``pipe``: a reader of it would block forever."""
    return _hostile(directory, "fifo", [Spec("pipe", kind="fifo")], fmt)


def setuid_tar(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A setuid executable ``run.sh`` (mode 4755)."""
    return _hostile(directory, "setuid", [Spec("run.sh", b"#!/bin/sh\n", mode=0o4755)], fmt)


def encrypted_zip(directory: Path) -> Path:
    """A zip whose ``secret.txt`` member has the 'encrypted' flag set."""
    path = _hostile(directory, "encrypted", [Spec("secret.txt", b"x" * 100)], "zip")
    _patch_zip(path, "secret.txt", flags=0x1)
    return path


# -- the manifest ---------------------------------------------------------------------------


def manifest_symlink(directory: Path, *, target: str = "/etc/passwd", fmt: Fmt = "tar.gz") -> Path:
    """``reprise.toml`` is a symlink to ``target`` (the server would read a host file)."""
    specs = [s for s in honest_specs() if s.name != "reprise.toml"]
    specs.append(Spec("reprise.toml", kind="symlink", target=target))
    return build(directory, "manifest-symlink", specs, fmt)


def manifest_directory(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """``reprise.toml`` is a folder."""
    specs = [s for s in honest_specs() if s.name != "reprise.toml"]
    specs += [Spec("reprise.toml", kind="dir", mode=0o755), Spec("reprise.toml/x", b"x")]
    return build(directory, "manifest-dir", specs, fmt)


def second_manifest_deeper(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """A second ``reprise.toml`` in ``vendor/other/``: which one is the package?"""
    return _hostile(directory, "two-manifests", [Spec("vendor/other/reprise.toml", MANIFEST)], fmt)


def no_manifest(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """Code without any ``reprise.toml``."""
    specs = [s for s in honest_specs() if s.name != "reprise.toml"]
    return build(directory, "no-manifest", specs, fmt)


def two_top_level_folders(directory: Path, *, fmt: Fmt = "tar.gz") -> Path:
    """``a/reprise.toml`` and ``b/extra.py``, nothing at the root."""
    specs = [*honest_specs("a/"), Spec("b/extra.py", b"x = 1\n")]
    return build(directory, "two-tops", specs, fmt)


# -- sizes and counts -----------------------------------------------------------------------


def _tar_header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def _tar_file(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return _tar_header(info) + data + b"\0" * (-len(data) % 512)


def targz_bomb(directory: Path, *, size: int = 1 << 30, lie: bool = False) -> Path:
    """``size`` bytes of zeros (a multiple of 1 MiB) in about ``size / 1000`` bytes on disk.

    Honest: a member ``zeros.bin`` declares its real size. ``lie``: its header declares 1 KiB,
    and the rest of the zeros follow as if they were padding, so no header ever declares more
    than a kilobyte and only counting the bytes really decompressed can stop it. The gzip is a
    chain of identical 1 MiB members, so building a gigabyte takes milliseconds.
    """
    if size % (1 << 20):
        raise ValueError("size must be a multiple of 1 MiB")
    head = b"".join(_tar_file(name, data) for name, data in HONEST_FILES.items())
    bomb = tarfile.TarInfo("zeros.bin")
    bomb.size = 1024 if lie else size
    mib = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    path = directory / ("targz-bomb-lie.tar.gz" if lie else "targz-bomb.tar.gz")
    with path.open("wb") as f:
        f.write(gzip.compress(head + _tar_header(bomb), mtime=0))
        for _ in range(size >> 20):
            f.write(mib)
        f.write(gzip.compress(bytes(1024), mtime=0))
    return path


def pax_bomb(directory: Path, *, size: int = 1 << 30) -> Path:
    """A PAX extended header (metadata, not a member) declaring ``size`` bytes of zeros.

    tarfile reads a PAX header into memory whole, before any member check could run.
    """
    if size % (1 << 20):
        raise ValueError("size must be a multiple of 1 MiB")
    head = b"".join(_tar_file(name, data) for name, data in HONEST_FILES.items())
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.size, pax.type = size, tarfile.XHDTYPE
    mib = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    path = directory / "pax-bomb.tar.gz"
    with path.open("wb") as f:
        f.write(gzip.compress(head + _tar_header(pax), mtime=0))
        for _ in range(size >> 20):
            f.write(mib)
        f.write(gzip.compress(_tar_file("after-pax.txt", b"x") + bytes(1024), mtime=0))
    return path


def pax_chain(directory: Path, *, n: int = 5_000) -> Path:
    """``n`` PAX headers in a row: tarfile follows such a chain by recursion."""
    pax = tarfile.TarInfo("././@PaxHeader")
    record = b"18 comment=hello\n"
    pax.size, pax.type = len(record), tarfile.XHDTYPE
    link = _tar_header(pax) + record + bytes(-len(record) % 512)
    head = b"".join(_tar_file(name, data) for name, data in HONEST_FILES.items())
    path = directory / "pax-chain.tar.gz"
    path.write_bytes(gzip.compress(head + link * n + _tar_file("x.txt", b"x") + bytes(1024)))
    return path


def sparse_map_bomb(directory: Path, *, fields: int = 10**9) -> Path:
    """A PAX "GNU sparse 1.0" member whose map claims ``fields`` entries (read into a list)."""
    info = tarfile.TarInfo("sparse.bin")
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                        "GNU.sparse.name": "sparse.bin", "GNU.sparse.realsize": "1024"}
    body = b"%d\n" % fields + b"1\n" * 100_000
    info.size = len(body)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for spec in honest_specs():
            if spec.kind == "file":
                member = tarfile.TarInfo(spec.name)
                member.size = len(spec.data)
                tar.addfile(member, io.BytesIO(spec.data))
        tar.addfile(info, io.BytesIO(body))
    path = directory / "sparse-map.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return path


def zip_bomb(directory: Path, *, size: int = 32 << 20, lie: bool = False) -> Path:
    """``zeros.bin``: ``size`` zeros deflated about 1000:1.

    ``lie``: the headers declare 1,000 bytes instead, so every declared-size check passes and
    only a reader capped at the declared size (and the CRC) stops it.
    """
    path = _hostile(directory, "zip-bomb-lie" if lie else "zip-bomb",
                    [Spec("zeros.bin", bytes(size))], "zip")
    if lie:
        _patch_zip(path, "zeros.bin", size=1000)
    return path


def zip_overlap_bomb(directory: Path, *, copies: int = 50) -> Path:
    """``copies`` central-directory records, distinct names, all pointing at one 4 MiB member.

    Each member on its own expands only ~75 times; together they declare ``copies`` times the
    data of an archive that holds it once (the "overlapping files" zip bomb).
    """
    rng = random.Random(0)
    data = b"".join(rng.randbytes(16) + bytes(2000) for _ in range(2080))  # ~4 MiB, ~75:1
    path = _hostile(directory, "zip-overlap", [Spec("m000", data)], "zip")
    raw = path.read_bytes()
    eocd = raw.rindex(b"PK\x05\x06")
    (cd_size, cd_offset) = struct.unpack_from("<II", raw, eocd + 12)
    records = raw[cd_offset : cd_offset + cd_size]
    template = records[records.rindex(b"PK\x01\x02") :]  # m000's record, the last one
    extra = b"".join(template.replace(b"m000", b"m%03d" % i) for i in range(1, copies))
    count = records.count(b"PK\x01\x02") + copies - 1
    end = bytearray(raw[eocd:])
    struct.pack_into("<HHI", end, 8, count, count, cd_size + len(extra))
    path.write_bytes(raw[: cd_offset + cd_size] + extra + bytes(end))
    return path


def entry_count_bomb(directory: Path, n: int = 100_000, *, fmt: Fmt = "tar.gz") -> Path:
    """``n`` empty files ``f/0000001`` ... after the honest package (tar headers written raw)."""
    if fmt == "zip":
        return _hostile(directory, f"entries-{n}", [Spec(f"f/{i:07d}") for i in range(n)], fmt)
    template = bytearray(_tar_header(tarfile.TarInfo("x")))
    template[0:100] = bytes(100)
    template[148:156] = b" " * 8
    base, middle, end = sum(template), bytes(template[100:148]), bytes(template[156:])
    headers = []
    for i in range(n):
        name = b"f/%07d" % i
        headers.append(name.ljust(100, b"\0") + middle + b"%06o\0 " % (base + sum(name)) + end)
    honest = _tar_bytes(honest_specs())
    with tarfile.open(fileobj=io.BytesIO(honest)) as tar:
        last = tar.getmembers()[-1]
    stop = last.offset_data + last.size + (-last.size % 512)  # drop the end-of-archive blocks
    payload = honest[:stop] + b"".join(headers) + b"\0" * 1024
    path = directory / f"entries-{n}.{fmt}"
    data = gzip.compress(payload, compresslevel=1, mtime=0) if fmt == "tar.gz" else payload
    path.write_bytes(data)
    return path


def negative_size_tar(directory: Path) -> Path:
    """A member whose size field is base-256 encoded -1 (tarfile would seek backwards)."""
    header = bytearray(_tar_header(tarfile.TarInfo("negative.bin")))
    header[124:136] = b"\xff" * 12
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    payload = b"".join(_tar_file(n, d) for n, d in HONEST_FILES.items()) + bytes(header)
    path = directory / "negative-size.tar.gz"
    path.write_bytes(gzip.compress(payload + bytes(1024), mtime=0))
    return path


def truncated_targz(directory: Path) -> Path:
    """The honest package cut off in the middle of its gzip stream."""
    path = honest_package(directory)
    data = path.read_bytes()
    truncated = directory / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    return truncated


def not_an_archive(directory: Path) -> Path:
    """A text file named like a package."""
    path = directory / "not-an-archive.tar.gz"
    path.write_bytes(b"#!/bin/sh\nrm -rf /\n" * 10)
    return path


# -- output files a sandbox might plant (host side) -----------------------------------------


def symlinked_file(directory: Path, name: str, target: Path | str) -> Path:
    """``directory/name`` is a symlink to ``target``."""
    path = directory / name
    os.symlink(target, path)
    return path


def hardlinked_file(directory: Path, name: str, target: Path) -> Path:
    """``directory/name`` is a second hard link to ``target`` (same filesystem)."""
    path = directory / name
    os.link(target, path)
    return path


def big_file(directory: Path, name: str, size: int) -> Path:
    """A sparse file of ``size`` bytes: huge to a reader, free on disk."""
    path = directory / name
    with path.open("wb") as f:
        f.truncate(size)
    return path


def fifo_file(directory: Path, name: str) -> Path:
    """A FIFO: a plain ``open()`` for reading would block until a writer appears."""
    path = directory / name
    os.mkfifo(path)
    return path


# -- JSON a package (or a compromised harness) might write as metrics.json -------------------

NAN_JSON = b'{"test_accuracy": NaN}'
INFINITY_JSON = b'{"test_accuracy": Infinity}'
NEG_INFINITY_JSON = b'{"test_accuracy": -Infinity}'
OVERFLOW_JSON = b'{"test_accuracy": 1e999}'  # a valid float literal that becomes inf
UNKNOWN_METRIC_JSON = b'{"test_accuracy": 0.9, "made_up_score": 1.0}'
BOOL_METRIC_JSON = b'{"test_accuracy": true}'
STRING_METRIC_JSON = b'{"test_accuracy": "0.99"}'
NESTED_METRIC_JSON = b'{"test_accuracy": {"mean": 0.9}}'
LIST_JSON = b"[0.9, 0.8]"
DUPLICATE_KEY_JSON = b'{"test_accuracy": 0.1, "test_accuracy": 0.99}'
NOT_UTF8_JSON = b'{"test_accuracy": 0.9, "note": "\xff\xfe"}'
BAD_NAME_JSON = b'{"test_accuracy\\n[INFO] verdict=confirmed": 0.9}'


def deep_json(depth: int = 100_000, *, objects: bool = False) -> bytes:
    """``[[[...]]]`` (or ``{"a":{"a":...}}``) nested ``depth`` levels."""
    if objects:
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b"[" * depth + b"]" * depth


def long_number_json(digits: int = 5_000, *, as_float: bool = False) -> bytes:
    """``{"test_accuracy": 1000...}``: int() of it costs quadratic time before the 4300 cap."""
    number = b"1" + b"0" * (digits - 1) + (b".5" if as_float else b"")
    return b'{"test_accuracy": ' + number + b"}"


def many_keys_json(n: int = 5_000) -> bytes:
    """An object of ``n`` distinct keys."""
    return b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(n)) + b"}"
