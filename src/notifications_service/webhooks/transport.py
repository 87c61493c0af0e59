"""One webhook POST with a total deadline and a cap on the answer read.

A socket timeout bounds each read, not the exchange: a receiver that trickles a byte a
second never trips it and holds the dispatcher for as long as it likes. Here a timer shuts
the attempt's sockets down at the deadline, which wakes the read blocked on them, and no
more than `max_bytes` of the answer's body is read. Everything else (redirects, TLS) is
urllib's, unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from types import TracebackType
from typing import Any


class DeadlineExceededError(TimeoutError):
    """The receiver did not finish answering within the attempt's total deadline."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most the cap


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    deadline: float,
    max_bytes: int,
) -> Answer:
    """POST `body`; the status and the first `max_bytes` of the answer, within `deadline`
    seconds in all. Raises `DeadlineExceededError` when time runs out, `OSError` or
    `http.client.HTTPException` on a connection or protocol failure."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310  (scheme checked by the caller)
    with _Deadline(deadline) as watch:
        opener = urllib.request.build_opener(_HTTPHandler(watch), _HTTPSHandler(watch))
        try:
            try:
                with opener.open(request, timeout=min(timeout, deadline)) as response:
                    answer = Answer(int(response.status), response.read(max_bytes))
            except urllib.error.HTTPError as exc:
                with exc:
                    answer = Answer(int(exc.code), exc.read(max_bytes))
        except Exception as exc:
            if watch.expired:
                raise DeadlineExceededError(f"no complete answer within {deadline:g}s") from exc
            raise
    if watch.expired:  # the last bytes came as the timer fired
        raise DeadlineExceededError(f"no complete answer within {deadline:g}s")
    return answer


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def watch(self, sock: socket.socket) -> None:
        # A duplicate of the descriptor: shutting it down ends the connection for every
        # descriptor of it, also after TLS has taken the original over.
        watched = sock.dup()
        with self._lock:
            self._sockets.append(watched)
            expired = self.expired
        if expired:
            _shutdown(watched)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTPConnection(http.client.HTTPConnection):
    """Hands each socket it opens to the deadline, before anything is sent or read on it
    (for HTTPS: before the TLS handshake)."""

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        create_connection = self._create_connection  # type: ignore[has-type]

        def create_watched_connection(*args: Any, **kwargs: Any) -> socket.socket:
            sock: socket.socket = create_connection(*args, **kwargs)
            deadline.watch(sock)
            return sock

        self._create_connection = create_watched_connection


class _WatchedHTTPSConnection(_WatchedHTTPConnection, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_WatchedHTTPConnection, deadline=self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            functools.partial(_WatchedHTTPSConnection, deadline=self._deadline), req
        )
