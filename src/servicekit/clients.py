"""Who is calling: the client's address, as far as the trusted proxies in front vouch for it.

Every per-address limit keys on `client_address`, so they all agree on who a client is.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Any, Protocol

from django.conf import settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HasMeta(Protocol):  # a Django HttpRequest or a DRF Request
    @property
    def META(self) -> dict[str, Any]: ...  # noqa: N802


@cache
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def _parse(value: str) -> IPAddress | None:
    """An address, also as some proxies write a hop: with a port (`1.2.3.4:5678`,
    `[2001:db8::1]:443`)."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _identity(address: IPAddress) -> str:
    """What a per-address limit counts: an IPv4 address (also when written IPv4-mapped), or an
    IPv6 client's /64, since one host commonly holds a whole /64 and could otherwise take a
    new address for every attempt."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def client_address(request: HasMeta) -> str:
    """The address of the client: REMOTE_ADDR, unless that is a trusted proxy.

    A trusted proxy (`TRUSTED_PROXIES`, a list of CIDRs) appends the address it saw to
    X-Forwarded-For, so the list is read from the right and every trusted hop skipped: the
    first untrusted one is the client. Everything left of it was written by the client and
    could be anything. A hop that is not an address stops the walk at the proxy that
    passed it on. An IPv6 client is its /64 (see `_identity`).
    """
    remote = _parse(str(request.META.get("REMOTE_ADDR") or ""))
    if remote is None:
        return "unknown"
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    client = remote
    if networks and _trusted(remote, networks):
        forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
        for hop in reversed(forwarded.split(",")):
            address = _parse(hop)
            if address is None:
                break
            client = address
            if not _trusted(address, networks):
                break
    return _identity(client)
