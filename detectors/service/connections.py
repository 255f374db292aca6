"""Connection guards uvicorn lacks: a deadline for request heads and a per-client connection cap.

uvicorn times out idle keep-alive connections, and the service's upload reader times out a
stalled body (``uploads.py``), but nothing times out a request whose *head* never completes: a
client that opens a few hundred connections and sends half a header line each fills
``limit_concurrency`` and every other client gets 503 for as long as it likes (slow loris).
:func:`guarded_protocol` returns uvicorn's h11 protocol with both guards added; :func:`serve`
passes it as ``http=``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import socket
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_LINGER_S = 1.0
"""Seconds a refused connection stays open after its reply, reading and discarding (see ``_refuse``)."""


SECURITY_HEADERS: tuple[tuple[str, str], ...] = (("x-content-type-options", "nosniff"),
                                                 ("referrer-policy", "no-referrer"))
"""Headers every answer of the service carries, also those sent before a request is complete."""


def _error_body(detail: str) -> bytes:
    """The service's error body, ``{"detail": ...}``, as every route's errors are."""
    return json.dumps({"detail": detail}).encode()


def _raw_response(status: str, detail: str, extra: str = "") -> bytes:
    """A complete HTTP/1.1 error response that closes the connection, for use before h11 has a
    request."""
    body = _error_body(detail)
    security = "".join(f"{k}: {v}\r\n" for k, v in SECURITY_HEADERS)
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n{security}"
        f"{extra}content-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def _send_without_delay(transport: Any) -> None:
    """Turn Nagle's algorithm off on a TCP connection. asyncio does so only for sockets made with
    ``proto=IPPROTO_TCP``, and the socket :func:`~detectors.service.app.serve` binds (uvicorn's
    ``bind_socket``) has proto 0: every response after the first on a kept-alive connection
    waited for the client's delayed ACK, about 40 ms."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def guarded_protocol(*, header_timeout_s: float, max_connections_per_client: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol class, with request heads due within ``header_timeout_s`` seconds
    (of connecting, or of the previous response on a kept-alive connection) and at most
    ``max_connections_per_client`` open connections per peer address (0: no cap).

    A late head gets ``408`` and the connection is closed; a connection over the cap gets ``503``
    with ``Retry-After`` and is closed. Each call makes a new class, so two servers in one process
    keep separate counts.
    """
    open_by_peer: collections.Counter[str] = collections.Counter()

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _peer: str | None = None
        _head_bytes = 0
        _refused = False

        def _refuse(self, reply: bytes) -> None:
            """Send ``reply``, stop writing, and close a moment later. Closing at once, with the
            client's request unread, would make the kernel reset the connection, and the client
            would lose the reply."""
            self._refused = True
            self.transport.write(reply)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(_LINGER_S, self.transport.close)

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            _send_without_delay(transport)
            peer = self.client[0] if self.client else None
            if max_connections_per_client and peer is not None:
                if open_by_peer[peer] >= max_connections_per_client:
                    log.warning("refused a connection from %s: %d already open", peer, open_by_peer[peer])
                    self._refuse(_raw_response(
                        "503 Service Unavailable",
                        f"too many open connections from this address (limit {max_connections_per_client})",
                        "retry-after: 5\r\n",
                    ))
                    return
                open_by_peer[peer] += 1
                self._peer = peer
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            if self._peer is not None:
                open_by_peer[self._peer] -= 1
                if open_by_peer[self._peer] <= 0:
                    del open_by_peer[self._peer]
                self._peer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # drained, not parsed: the reply is sent and the connection is closing
            if self._head_timer is not None:
                self._head_bytes += len(data)
            super().data_received(data)

        def send_400_response(self, msg: str) -> None:
            """uvicorn's reply to a request h11 cannot parse (a Content-Length that is no
            number, say), as JSON like every other error, not plain text."""
            body = _error_body("malformed HTTP request (h11 could not parse it)")
            headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                       *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS)]
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
            self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            # h11 leaves IDLE once a whole request head has been parsed.
            if self.conn.their_state is not h11.IDLE:
                self._cancel_head_timer()

        def on_response_complete(self) -> None:
            if not self.transport.is_closing():
                self._arm_head_timer()  # the next request's head is due in time too
            super().on_response_complete()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self._head_bytes:  # a silent kept-alive connection is just closed, as uvicorn does
                self._refuse(_raw_response(
                    "408 Request Timeout", f"request headers not received within {header_timeout_s:g} s"
                ))
            else:
                self.transport.close()

    return GuardedH11Protocol
