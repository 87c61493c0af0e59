"""One webhook POST: to an address checked once, within a total deadline, never redirected.

The receiver's host is resolved once per attempt; if any of its addresses is not a public
one (loopback, private, link-local, CGNAT, multicast, reserved, or an IPv6 form that
embeds one of those), the attempt is refused before a connection is made. Otherwise the
connection goes to the first checked address: the URL's host is never resolved again
(a name that answers a public address to the check and 127.0.0.1 to the connection gets
no second chance). The Host header, the TLS SNI and the certificate check stay on the
URL's hostname.

A socket timeout bounds each read, not the exchange: a receiver that trickles a byte a
second never trips it. A timer shuts the attempt's socket down at the deadline, which
wakes the read blocked on it, and no more than `max_bytes` of the answer's body is read.

Failures carry short, generic reasons: the attempt log is shown to whoever registered the
URL, and must not tell them more about the network than the receiver itself would.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import certifi
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address in their last 32 bits, which a translator may
# deliver to: IPv4-compatible (deprecated) and the NAT64 well-known prefix.
_IPV4_EMBEDDING_PREFIXES = (
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # SIIT, IPv4-translated
)
# Never public, whatever `is_global` says: local-use NAT64 (RFC 8215) translates to any
# IPv4 address, and site-local addresses (deprecated) are still routed inside some sites.
_NEVER_PUBLIC = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("fec0::/10"),
)


REFUSED = "refused: address not allowed"


class AttemptFailedError(Exception):
    """The attempt failed; `str()` is the reason recorded in the organizer's log."""


class AddressNotAllowedError(AttemptFailedError):
    def __init__(self) -> None:
        super().__init__(REFUSED)


class DeadlineExceededError(AttemptFailedError):
    """The receiver did not finish answering within the attempt's total deadline."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most the cap


def address_allowed(address: IPAddress) -> bool:
    """Only public unicast addresses; `is_global` alone lets multicast and the IPv6 forms
    that embed an IPv4 address through."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in prefix for prefix in _NEVER_PUBLIC):
            return False
        embedded = [address.ipv4_mapped, address.sixtofour]
        if any(address in prefix for prefix in _IPV4_EMBEDDING_PREFIXES):
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(address_allowed(inner) for inner in embedded if inner is not None)
    return True


def resolve(host: str, port: int, *, allow_private: bool) -> IPAddress:
    """The address to connect to: the first of the host's addresses, all of them checked.

    A host that does not resolve is refused like a private one: the log must not tell
    internal names apart from unknown ones.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressNotAllowedError() from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise AddressNotAllowedError()
    if not allow_private and not all(address_allowed(address) for address in addresses):
        raise AddressNotAllowedError()
    return addresses[0]


def post(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    deadline: float,
    max_bytes: int,
    allow_private: bool,
) -> Answer:
    """POST `body` to `url`; the status and the first `max_bytes` of the answer, within
    `deadline` seconds in all. A 3xx is an answer like any other: never followed.
    Raises `AttemptFailedError` (with a generic reason) when no answer came."""
    target = httpx.URL(url)
    hostname = target.raw_host.decode("ascii")
    with _Deadline(deadline) as watch:
        address = resolve(
            hostname, target.port or _DEFAULT_PORTS[target.scheme], allow_private=allow_private
        )
        remaining = max(deadline - watch.elapsed(), 0.001)
        request = httpx.Request(
            "POST",
            target.copy_with(host=str(address)),
            content=body,
            headers={
                **headers,
                "Host": target.netloc.decode("ascii"),
                # The answer is only read as bytes: nothing to decompress, however large.
                "Accept-Encoding": "identity",
            },
            extensions={
                "sni_hostname": hostname,
                "trace": watch.trace,
                "timeout": httpx.Timeout(min(timeout, remaining)).as_dict(),
            },
        )
        try:
            with _client() as client:
                response = client.send(request, stream=True)
                try:
                    answer = Answer(response.status_code, _read_capped(response, max_bytes))
                finally:
                    response.close()
        except httpx.HTTPError as exc:
            if watch.expired:
                raise DeadlineExceededError(_deadline_reason(deadline)) from exc
            raise AttemptFailedError(_reason(exc)) from exc
    if watch.expired:  # the last bytes came as the timer fired
        raise DeadlineExceededError(_deadline_reason(deadline))
    return answer


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _client() -> httpx.Client:
    # No proxies from the environment (they would connect by name), no redirects.
    return httpx.Client(verify=_ssl_context(), trust_env=False, follow_redirects=False)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loaded once: reading the CA bundle for every attempt would cost more than the POST.
    return ssl.create_default_context(cafile=certifi.where())


def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    body = b""
    for chunk in response.iter_raw():
        body += chunk
        if len(body) >= max_bytes:
            break
    return body[:max_bytes]


def _deadline_reason(deadline: float) -> str:
    return f"deadline exceeded: no complete answer within {deadline:g}s"


def _reason(exc: httpx.HTTPError) -> str:
    # Reasons, not the exception's text: that can carry addresses and system messages.
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect (connection or TLS handshake failed)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for the answer"
    if isinstance(exc, httpx.ProtocolError):
        return "no valid HTTP answer"
    if isinstance(exc, httpx.NetworkError):
        return "connection lost"
    return "request failed"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._started = time.monotonic()
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

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's `trace` extension: the socket as soon as it is connected, before the
        TLS handshake or anything else is sent or read on it."""
        if event == "connection.connect_tcp.complete":
            self._watch(info["return_value"].get_extra_info("socket"))

    def _watch(self, sock: socket.socket) -> None:
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
