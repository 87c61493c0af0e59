from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from servicekit.clients import client_address


def address(remote: str, forwarded: str | None = None) -> str:
    request = RequestFactory().get("/")
    request.META["REMOTE_ADDR"] = remote
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(request)


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert address("203.0.113.9", "198.51.100.1") == "203.0.113.9"


class TestBehindTrustedProxies:
    @pytest.fixture(autouse=True)
    def _proxies(self, settings: Any) -> None:
        settings.TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8::/32"]

    def test_the_first_untrusted_hop_from_the_right_is_the_client(self) -> None:
        # The client wrote "6.6.6.6" itself; the two proxies appended what they saw.
        assert address("10.0.0.5", "6.6.6.6, 203.0.113.7, 10.2.3.4") == "203.0.113.7"

    def test_a_peer_that_is_not_a_trusted_proxy_is_the_client(self) -> None:
        assert address("198.51.100.1", "203.0.113.7") == "198.51.100.1"

    def test_ipv6_hops(self) -> None:
        assert address("2001:db8::1", "2001:DB8:0:0::7, 2001:db8::2") == "2001:db8::/64"
        assert address("2001:db8::1", "2a00:1450::1") == "2a00:1450::/64"

    @pytest.mark.parametrize(
        ("forwarded", "client"),
        [
            ("203.0.113.7:5678", "203.0.113.7"),
            ("[2a00:1450::1]:443", "2a00:1450::/64"),
            ("203.0.113.7:5678, 10.2.3.4:80", "203.0.113.7"),
        ],
    )
    def test_hops_written_with_a_port(self, forwarded: str, client: str) -> None:
        # Some load balancers append the port they saw; every client must not become one.
        assert address("10.0.0.5", forwarded) == client

    @pytest.mark.parametrize(
        ("forwarded", "client"),
        [
            ("", "10.0.0.5"),  # no header: the proxy itself
            ("not-an-address", "10.0.0.5"),
            ("203.0.113.7, bogus, 10.2.3.4", "10.2.3.4"),  # stops at the hop that passed it on
            ("10.1.1.1, 10.2.2.2", "10.1.1.1"),  # every hop trusted: the leftmost
        ],
    )
    def test_what_a_proxy_did_not_write_is_not_believed(self, forwarded: str, client: str) -> None:
        assert address("10.0.0.5", forwarded) == client


def test_an_ipv6_client_is_its_64() -> None:
    # One host commonly holds a whole /64: a new source address per attempt must not give it
    # a new per-address budget (nor let it spend an account's budget from "many" addresses).
    assert address("2a00:1450:4001:81c::1") == address("2a00:1450:4001:81c:dead:beef::9")
    assert address("2a00:1450:4001:81c::1") != address("2a00:1450:4001:81d::1")


def test_an_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    assert address("::ffff:203.0.113.9") == "203.0.113.9"
