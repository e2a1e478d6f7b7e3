"""Streaming multipart uploads to disk: a byte cap, a part cap, sha256 on the way, never the
whole archive in memory. Works with and without Content-Length (chunked uploads).

Parsing, writing and hashing run in a worker thread, one batch of about 1 MiB at a time, so a
large upload never stalls the event loop.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

BATCH_BYTES = 1 << 20


@dataclass
class ReceivedFile:
    path: Path
    size: int
    sha256: str
    filename: str | None


@dataclass
class _State:
    file_field: str
    dest_dir: Path
    max_file_bytes: int
    max_parts: int
    max_field_bytes: int
    parts: int = 0
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, str] = field(default_factory=dict)
    current_name: str | None = None
    current_filename: str | None = None
    in_file: bool = False
    fd: int | None = None
    tmp_path: Path | None = None
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    fields: dict[str, str] = field(default_factory=dict)
    field_buf: bytearray = field(default_factory=bytearray)
    result: ReceivedFile | None = None
    error: Exception | None = None


def _on_part_begin(s: _State) -> None:
    s.parts += 1
    if s.parts > s.max_parts:
        raise PayloadTooLarge(f"too many multipart parts (more than {s.max_parts})")
    s.headers = {}
    s.current_name = None
    s.current_filename = None


def _on_header_end(s: _State) -> None:
    s.headers[bytes(s.header_field).decode("latin-1").lower()] = bytes(s.header_value).decode(
        "latin-1"
    )
    s.header_field.clear()
    s.header_value.clear()


def _on_headers_finished(s: _State) -> None:
    disposition, params = parse_options_header(s.headers.get("content-disposition", ""))
    if disposition != b"form-data":
        raise BadRequest("every multipart part needs Content-Disposition: form-data")
    name = params.get(b"name", b"").decode("utf-8", "replace")
    filename = params.get(b"filename")
    s.current_name = name
    if name == s.file_field:
        if s.result is not None or s.fd is not None:
            raise ValidationFailed(
                f"send exactly one {s.file_field!r} part",
                errors=[{"loc": s.file_field, "msg": "given twice"}],
            )
        s.in_file = True
        s.current_filename = filename.decode("utf-8", "replace") if filename is not None else None
        fd, tmp = tempfile.mkstemp(dir=s.dest_dir, prefix="upload-")
        s.fd, s.tmp_path = fd, Path(tmp)
    else:
        raise ValidationFailed(
            f"unexpected form field {name!r}: send the archive as the {s.file_field!r} part",
            errors=[{"loc": name or "form", "msg": "unexpected field"}],
        )


def _on_part_data(s: _State, data: bytes, start: int, end: int) -> None:
    chunk = data[start:end]
    if s.in_file:
        s.size += len(chunk)
        if s.size > s.max_file_bytes:
            raise PayloadTooLarge(
                f"the package is larger than the limit of {s.max_file_bytes} bytes"
            )
        s.digest.update(chunk)
        assert s.fd is not None
        view = memoryview(chunk)
        while view:
            written = os.write(s.fd, view)
            view = view[written:]
    else:
        s.field_buf.extend(chunk)
        if len(s.field_buf) > s.max_field_bytes:
            raise PayloadTooLarge("a form field is too large")


def _on_part_end(s: _State) -> None:
    if s.in_file:
        assert s.fd is not None and s.tmp_path is not None
        os.close(s.fd)
        s.fd = None
        s.result = ReceivedFile(
            path=s.tmp_path, size=s.size, sha256=s.digest.hexdigest(), filename=s.current_filename
        )
        s.in_file = False
    elif s.current_name is not None:
        s.fields[s.current_name] = s.field_buf.decode("utf-8", "replace")
        s.field_buf.clear()


def _cleanup(s: _State) -> None:
    if s.fd is not None:
        os.close(s.fd)
        s.fd = None
    if s.tmp_path is not None:
        s.tmp_path.unlink(missing_ok=True)
    s.result = None


async def receive_file(
    request: Request,
    *,
    file_field: str,
    dest_dir: Path,
    max_file_bytes: int,
    max_parts: int,
    max_field_bytes: int = 4096,
) -> ReceivedFile:
    """Stream the one file part of a multipart/form-data request to ``dest_dir``."""
    content_type = request.headers.get("content-type", "")
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise UnsupportedMediaType(
            f"send the package as multipart/form-data with a {file_field!r} file part"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("the multipart boundary is missing from Content-Type")
    await anyio.Path(dest_dir).mkdir(parents=True, exist_ok=True)
    s = _State(
        file_field=file_field,
        dest_dir=dest_dir,
        max_file_bytes=max_file_bytes,
        max_parts=max_parts,
        max_field_bytes=max_field_bytes,
    )
    callbacks: Any = {
        "on_part_begin": lambda: _on_part_begin(s),
        "on_header_field": lambda d, a, b: s.header_field.extend(d[a:b]),
        "on_header_value": lambda d, a, b: s.header_value.extend(d[a:b]),
        "on_header_end": lambda: _on_header_end(s),
        "on_headers_finished": lambda: _on_headers_finished(s),
        "on_part_data": lambda d, a, b: _on_part_data(s, d, a, b),
        "on_part_end": lambda: _on_part_end(s),
    }
    parser = MultipartParser(boundary, callbacks)
    batch = bytearray()
    try:
        async for chunk in request.stream():
            batch.extend(chunk)
            if len(batch) >= BATCH_BYTES:
                data, batch = bytes(batch), bytearray()
                await anyio.to_thread.run_sync(parser.write, data)
        if batch:
            await anyio.to_thread.run_sync(parser.write, bytes(batch))
        parser.finalize()
    except MultipartParseError as exc:
        _cleanup(s)
        raise BadRequest(f"the multipart body is malformed: {exc}") from exc
    except BaseException:
        _cleanup(s)
        raise
    if s.result is None:
        _cleanup(s)
        raise ValidationFailed(
            f"the request has no {file_field!r} file part",
            errors=[{"loc": file_field, "msg": "required but missing"}],
        )
    return s.result
