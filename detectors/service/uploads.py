"""Receive an upload (raw body or multipart/form-data) straight into a temporary file.

The body is never held in memory: chunks go to disk as they arrive. Limits: total size
(checked against Content-Length first, then while streaming), total time, and the longest
pause between chunks (a slow-loris client is cut off). Client file names are only used for
display and for their extension; the temporary file's name is random.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import re
import time
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request

_MULTIPART_OVERHEAD = 64 * 1024
"""Bytes of multipart framing and small fields tolerated on top of the file size limit."""


class UploadError(Exception):
    """A bad upload; ``status_code`` is the HTTP status to answer with (4xx)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class ClientGone(Exception):
    """The client disconnected before the upload finished."""


@dataclass
class Upload:
    path: Path
    """The temporary file (random name) holding the upload; the caller deletes it."""
    filename: str
    """Sanitised display name (no directories, no control characters)."""
    content_type: str | None
    size: int
    """Bytes."""


def display_name(raw: str | bytes | None, default: str = "upload") -> str:
    """A safe display name from a client-supplied file name: the last path component, printable
    characters only, at most 200 characters. Never used to build a path."""
    if raw is None:
        return default
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return base[:200] or default


_EXT_FILENAME = re.compile(r"""filename\*\s*=\s*([A-Za-z0-9_-]+)'[^']*'([^;\s]+)""", re.IGNORECASE)


_FORM_DATA_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n"}
"""What browsers write for ``"``, CR and LF in a form part's ``filename=`` (the WHATWG HTML
standard's multipart/form-data encoding): these three, upper case, and nothing else."""


def disposition_filename(value: str | bytes | None, *, form_data: bool = False) -> str | None:
    """The file name of a Content-Disposition value: RFC 6266's ``filename*=UTF-8''...`` (RFC 5987
    encoded) first, then ``filename=``; None if it names none.

    ``form_data``: the value heads a multipart/form-data part, whose plain ``filename=`` browsers
    write with ``"``, CR and LF escaped as ``%22``, ``%0D`` and ``%0A``; exactly those are undone
    (a real name may hold other ``%xx``: ``100%41.wav`` stays as it is)."""
    if not value:
        return None
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else header_text(value)
    if m := _EXT_FILENAME.search(text):
        try:
            return urllib.parse.unquote(m.group(2), encoding=m.group(1), errors="strict")
        except (LookupError, UnicodeDecodeError):
            pass
    from python_multipart.multipart import parse_options_header

    plain = parse_options_header(text.encode("utf-8"))[1].get(b"filename")
    if plain is None:
        return None
    name = plain.decode("utf-8", errors="replace")
    return _unescape_form_filename(name) if form_data else name


def _unescape_form_filename(name: str) -> str:
    """``name`` with the WHATWG form-data escapes undone in one pass (a name is decoded once)."""
    return re.sub("%22|%0D|%0A", lambda m: _FORM_DATA_ESCAPES[m.group(0)], name)


def header_text(value: str) -> str:
    """A header value as its sender wrote it: ASGI servers decode header bytes as Latin-1, but
    clients send UTF-8 (``X-Filename: été.flac``)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def safe_suffix(name: str) -> str:
    """``.ext`` (1-8 ASCII letters/digits) from a display name, or ''."""
    if "." not in name:
        return ""
    ext = name.rsplit(".", 1)[-1].lower()
    return "." + ext if 1 <= len(ext) <= 8 and ext.isascii() and ext.isalnum() else ""


class _MultipartSink:
    """python-multipart callbacks writing the first file part to ``fh``."""

    def __init__(self, fh: Any, max_bytes: int) -> None:
        self.fh = fh
        self.max_bytes = max_bytes
        self.size = 0
        self.other_bytes = 0
        self.filename: str | None = None
        self.content_type: str | None = None
        self.done_file = False
        self._in_file = False
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._field = b""
        self._value = b""
        self._in_file = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = b""
        self._value = b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition = self._headers.get(b"content-disposition", b"")
        _, params = parse_options_header(disposition)
        name = params.get(b"name")
        fname = disposition_filename(disposition, form_data=True)
        if not self.done_file and (fname is not None or name == b"file"):
            self._in_file = True
            self.filename = display_name(fname) if fname is not None else None
            ct = self._headers.get(b"content-type")
            self.content_type = ct.decode("latin-1")[:100] if ct else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._in_file:
            self.size += n
            if self.size > self.max_bytes:
                raise UploadError(413, f"upload is larger than the limit of {self.max_bytes} bytes")
            self.fh.write(data[start:end])
        else:
            self.other_bytes += n
            if self.other_bytes > _MULTIPART_OVERHEAD:
                raise UploadError(413, "form fields other than the file are too large")

    @property
    def in_file(self) -> bool:
        """Inside the file part: its closing boundary has not arrived (yet)."""
        return self._in_file

    def _part_end(self) -> None:
        if self._in_file:
            self.done_file = True
            self._in_file = False


async def receive_upload(
    request: Request,
    dest_dir: Path,
    *,
    max_bytes: int,
    timeout_s: float,
    idle_timeout_s: float,
) -> Upload:
    """Stream the request body into a new file in ``dest_dir``; raises :class:`UploadError`
    (4xx) or :class:`ClientGone`. On any failure the partial file is removed."""
    headers = request.headers
    ctype = headers.get("content-type", "")
    is_multipart = ctype.lower().startswith("multipart/form-data")
    clen = headers.get("content-length")
    if clen is not None:
        try:
            declared = int(clen)
        except ValueError:
            raise UploadError(400, "Content-Length is not a number") from None
        if declared > max_bytes + (_MULTIPART_OVERHEAD if is_multipart else 0):
            raise UploadError(413, f"upload of {declared} bytes is larger than the limit of {max_bytes} bytes")

    raw_name = request.query_params.get("filename") or (
        header_text(headers["x-filename"]) if "x-filename" in headers else None
    )
    if not raw_name and "content-disposition" in headers:
        raw_name = disposition_filename(headers["content-disposition"])
    name = display_name(raw_name)

    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"up-{secrets.token_hex(12)}{safe_suffix(name)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    ok = False
    try:
        with os.fdopen(fd, "wb") as fh:
            parser = None
            sink = None
            if is_multipart:
                from python_multipart import MultipartParser
                from python_multipart.multipart import parse_options_header

                _, params = parse_options_header(ctype)
                boundary = params.get(b"boundary")
                if not boundary or len(boundary) > 200:
                    raise UploadError(400, "multipart upload without a valid boundary")
                sink = _MultipartSink(fh, max_bytes)
                parser = MultipartParser(boundary, sink.callbacks())
            size = 0
            loop_deadline = time.monotonic() + timeout_s
            while True:
                remaining = loop_deadline - time.monotonic()
                if remaining <= 0:
                    raise UploadError(408, f"upload took longer than the limit of {timeout_s:g} s")
                try:
                    message = await asyncio.wait_for(request.receive(), min(idle_timeout_s, remaining))
                except asyncio.TimeoutError:
                    if time.monotonic() >= loop_deadline:
                        raise UploadError(408, f"upload took longer than the limit of {timeout_s:g} s") from None
                    raise UploadError(
                        408, f"upload stalled: no data for {idle_timeout_s:g} s (too slow, or interrupted)"
                    ) from None
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                body = message.get("body", b"")
                if body:
                    if parser is not None:
                        try:
                            parser.write(body)
                        except UploadError:
                            raise
                        except Exception as exc:  # python-multipart parse errors
                            raise UploadError(400, f"malformed multipart upload: {exc}") from exc
                    else:
                        size += len(body)
                        if size > max_bytes:
                            raise UploadError(413, f"upload is larger than the limit of {max_bytes} bytes")
                        fh.write(body)
                if not message.get("more_body", False):
                    break
            if parser is not None and sink is not None:
                try:
                    parser.finalize()
                except Exception as exc:
                    raise UploadError(400, f"malformed multipart upload: {exc}") from exc
                if sink.in_file:
                    raise UploadError(400, "multipart upload is incomplete: the file part has no closing boundary")
                if not sink.done_file:
                    raise UploadError(400, "no file in the upload (send it in a form field named 'file')")
                size = sink.size
                name = sink.filename or name
                ctype = sink.content_type or ""
        if safe_suffix(name) != path.suffix:
            # The name came with the multipart part, after the spool file was named: give it the
            # extension, which the verifier's readers and the C2PA reader go by.
            named = path.with_name(f"up-{secrets.token_hex(12)}{safe_suffix(name)}")
            os.replace(path, named)
            path = named
        ok = True
        return Upload(path=path, filename=name, content_type=ctype or None, size=size)
    finally:
        if not ok:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
