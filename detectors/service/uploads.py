"""Receive an upload (raw body or multipart/form-data) straight into a temporary file.

The body is never held in memory: chunks go to disk as they arrive. Limits: total size
(checked against Content-Length first, then while streaming), total time, and the longest
pause between chunks (a slow-loris client is cut off). Client file names are only used for
display and for their extension; the temporary file's name is random.

A multipart upload may carry, besides the file, its C2PA sidecar (the manifest of a format that
cannot embed one: Ogg, Matroska, AIFF...), in a part named ``sidecar`` or as a file part whose
name ends in ``.c2pa``, before or after the file. It is spooled as ``<spool file>.c2pa``, where
the verifier looks for a sidecar, within :data:`MAX_SIDECAR_BYTES`.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request

_MULTIPART_OVERHEAD = 64 * 1024
"""Bytes of multipart framing and small fields tolerated on top of the file size limit."""

MAX_SIDECAR_BYTES = 16 * 1024 * 1024
"""Largest sidecar manifest accepted, bytes. FoleySeal's are a few KB; a manifest with
thumbnails or a long history of ingredients stays well below this."""

SIDECAR_SUFFIX = ".c2pa"


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
    sidecar: Path | None = None
    """The C2PA sidecar sent with the file, spooled as ``<path>.c2pa``; the caller deletes it."""

    def remove(self) -> None:
        """Delete the spooled file and its sidecar (either may be gone already)."""
        for spooled in (self.path, self.sidecar):
            if spooled is not None:
                with contextlib.suppress(FileNotFoundError):
                    spooled.unlink()


def size_text(n: int) -> str:
    """``16777216 bytes (16.0 MiB)``: the exact figure, and the one the web page shows."""
    return f"{n} bytes ({n / 2**20:.1f} MiB)" if n >= 2**20 else f"{n} bytes"


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


class _Spool:
    """One part of a multipart upload on its way to disk, within a size limit."""

    def __init__(self, path: Path, max_bytes: int, what: str, fh: Any = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.what = what
        """'upload' or 'sidecar', for the 413 message."""
        self.fh = fh
        """The open file; a spool without one creates ``path`` at its first byte (and closes it)."""
        self._owns_fh = fh is None
        self.size = 0
        """Bytes written."""
        self.begun = False
        self.done = False
        self.named = False
        """Sent in a part named for its role (``sidecar``), not only known by its file name."""
        self.filename: str | None = None
        self.content_type: str | None = None

    def begin(self, filename: str | None, content_type: bytes | None, *, named: bool) -> None:
        self.begun = True
        self.named = named
        self.filename = display_name(filename) if filename is not None else None
        self.content_type = content_type.decode("latin-1")[:100] if content_type else None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise UploadError(413, f"{self.what} is larger than the limit of {size_text(self.max_bytes)}")
        if self.fh is None:
            self.fh = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self.fh.write(chunk)

    def close(self) -> None:
        """Close the file this spool opened itself (the caller closes one it handed in)."""
        if self._owns_fh and self.fh is not None:
            self.fh.close()


class _MultipartSink:
    """python-multipart callbacks: the file part goes to ``media``, a sidecar part (named
    ``sidecar``, or a file part whose name ends in ``.c2pa``) to ``sidecar``, in either order; a
    second media file is refused (400); plain form fields are counted against the small fields'
    allowance and dropped."""

    def __init__(self, media: _Spool, sidecar: _Spool) -> None:
        self.media = media
        self.sidecar = sidecar
        self.other_bytes = 0
        self._current: _Spool | None = None
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
        self._current = None

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
        spool = self._spool_for(name, fname)
        if spool is not None:
            spool.begin(fname, self._headers.get(b"content-type"), named=name == b"sidecar")
        self._current = spool

    def _spool_for(self, name: bytes | None, fname: str | None) -> _Spool | None:
        """Where a part with form field ``name`` and file name ``fname`` goes (None: dropped)."""
        if fname is None and name not in (b"file", b"sidecar"):
            return None  # a plain form field
        if name == b"sidecar":
            if self.sidecar.begun:
                raise UploadError(400, "more than one sidecar in the upload (send one, in the part named 'sidecar')")
            return self.sidecar
        if fname is not None and fname.lower().endswith(SIDECAR_SUFFIX) and not self.sidecar.begun:
            return self.sidecar
        if self.media.begun:
            # dropped, it was counted against the small fields' allowance: a 413 about "form fields"
            raise UploadError(400, "more than one media file in the upload: send one per request, in the part "
                                   "named 'file' (with its .c2pa sidecar, if it has one, in the part named 'sidecar')")
        return self.media

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.write(data[start:end])
        else:
            self.other_bytes += end - start
            if self.other_bytes > _MULTIPART_OVERHEAD:
                raise UploadError(413, "form fields other than the file are too large")

    @property
    def in_file(self) -> bool:
        """Inside a file part: its closing boundary has not arrived (yet)."""
        return self._current is not None

    def _part_end(self) -> None:
        if self._current is not None:
            self._current.done = True
            self._current = None

    def file_part(self) -> _Spool:
        """The spool of the file to verify, once the body is complete: the file part, or a lone
        ``.c2pa`` part sent as a file (not named ``sidecar``), which the verifier then names as
        the manifest it is. :class:`UploadError` 400 when there is none."""
        if self.media.done:
            return self.media
        if self.sidecar.done and not self.sidecar.named:
            return self.sidecar
        raise UploadError(400, "no file in the upload (send it in a form field named 'file')")


def _check_declared_length(headers: Any, max_bytes: int, is_multipart: bool) -> None:
    """:class:`UploadError` 413 when Content-Length already says too much (400 when it is no
    number): such a body is refused before it is read."""
    clen = headers.get("content-length")
    if clen is None:
        return
    try:
        declared = int(clen)
    except ValueError:
        raise UploadError(400, "Content-Length is not a number") from None
    # A form carries framing and small fields, and may carry a sidecar, beside the file.
    allowed = max_bytes + (_MULTIPART_OVERHEAD + MAX_SIDECAR_BYTES if is_multipart else 0)
    if declared > allowed:
        raise UploadError(413, f"upload of {size_text(declared)} is larger than the limit of {size_text(max_bytes)}")


def _client_name(request: Request) -> str:
    """The display name the request gives before its body: ``?filename=``, ``X-Filename``, or
    its Content-Disposition (a form's parts may name the file later)."""
    headers = request.headers
    raw_name = request.query_params.get("filename") or (
        header_text(headers["x-filename"]) if "x-filename" in headers else None
    )
    if not raw_name and "content-disposition" in headers:
        raw_name = disposition_filename(headers["content-disposition"])
    return display_name(raw_name)


def _multipart_parser(ctype: str, sink: _MultipartSink) -> Any:
    """A python-multipart parser feeding ``sink``; 400 without a usable boundary."""
    from python_multipart import MultipartParser
    from python_multipart.multipart import parse_options_header

    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise UploadError(400, "multipart upload without a valid boundary")
    return MultipartParser(boundary, sink.callbacks())


def _feed_parser(parser: Any) -> Callable[[bytes], None]:
    """``parser.write`` with its parse errors turned into :class:`UploadError` 400."""

    def feed(body: bytes) -> None:
        try:
            parser.write(body)
        except UploadError:
            raise
        except Exception as exc:  # python-multipart parse errors
            raise UploadError(400, f"malformed multipart upload: {exc}") from exc

    return feed


async def stream_body(
    request: Request, feed: Callable[[bytes], None], timeout_s: float, idle_timeout_s: float
) -> None:
    """Hand each chunk of the request body to ``feed`` as it arrives: 408 past ``timeout_s`` in
    all or ``idle_timeout_s`` without data (seconds), :class:`ClientGone` on a disconnect."""
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
            feed(body)
        if not message.get("more_body", False):
            return


def _finish_multipart(parser: Any, sink: _MultipartSink) -> _Spool:
    """Close the parse of a complete body; the spool of the file to verify (400 when the body
    ends inside a part or holds no file)."""
    try:
        parser.finalize()
    except Exception as exc:
        raise UploadError(400, f"malformed multipart upload: {exc}") from exc
    if sink.in_file:
        raise UploadError(400, "multipart upload is incomplete: the file part has no closing boundary")
    return sink.file_part()


def _sidecar_of(path: Path) -> Path:
    """Where the sidecar of the spool file ``path`` lies: beside it, its name plus ``.c2pa``, the
    first name the verifier's C2PA reader looks for."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


async def receive_upload(
    request: Request,
    dest_dir: Path,
    *,
    max_bytes: int,
    timeout_s: float,
    idle_timeout_s: float,
) -> Upload:
    """Stream the request body into a new file in ``dest_dir`` (a form's sidecar part beside
    it); raises :class:`UploadError` (4xx) or :class:`ClientGone`. On any failure the partial
    files are removed."""
    ctype = request.headers.get("content-type", "")
    is_multipart = ctype.lower().startswith("multipart/form-data")
    _check_declared_length(request.headers, max_bytes, is_multipart)
    name = _client_name(request)

    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"up-{secrets.token_hex(12)}{safe_suffix(name)}"
    sidecar = _Spool(_sidecar_of(path), MAX_SIDECAR_BYTES, "sidecar")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    has_sidecar = False
    ok = False
    try:
        with os.fdopen(fd, "wb") as fh:
            media = _Spool(path, max_bytes, "upload", fh)
            if not is_multipart:
                await stream_body(request, media.write, timeout_s, idle_timeout_s)
                part = media
            else:
                sink = _MultipartSink(media, sidecar)
                parser = _multipart_parser(ctype, sink)
                try:
                    await stream_body(request, _feed_parser(parser), timeout_s, idle_timeout_s)
                    part = _finish_multipart(parser, sink)
                finally:
                    sidecar.close()
                name = part.filename or name
                ctype = part.content_type or ""
        if part is sidecar:
            # A lone .c2pa sent as the file: it is the file to verify (the verifier says what it is).
            if sidecar.size:
                os.replace(sidecar.path, path)
        else:
            has_sidecar = sidecar.size > 0  # an empty sidecar part (a form's empty input) is none
        if safe_suffix(name) != path.suffix:
            # The name came with the multipart part, after the spool file was named: give it the
            # extension, which the verifier's readers and the C2PA reader go by.
            named = path.with_name(f"up-{secrets.token_hex(12)}{safe_suffix(name)}")
            os.replace(path, named)
            path = named
        if has_sidecar:
            os.replace(sidecar.path, _sidecar_of(path))
        ok = True
        return Upload(path=path, filename=name, content_type=ctype or None, size=part.size,
                      sidecar=_sidecar_of(path) if has_sidecar else None)
    finally:
        if not ok:
            for partial in (path, sidecar.path, _sidecar_of(path)):
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
