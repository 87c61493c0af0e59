"""Signing keys kept by a service: encrypted at rest per purpose, cached once decrypted."""

from __future__ import annotations

import hashlib

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from servicekit.signing import KeyRing


def test_a_new_key_is_stored_encrypted_and_signs_what_its_jwk_verifies() -> None:
    ring = KeyRing("test-purpose")
    new = ring.generate()
    assert b"ENCRYPTED PRIVATE KEY" in new.private_key_pem
    assert (new.public_jwk["kty"], new.public_jwk["crv"], new.public_jwk["kid"]) == (
        "OKP",
        "Ed25519",
        new.kid,
    )
    assert "d" not in new.public_jwk
    loaded = KeyRing("test-purpose").private(kid=new.kid, private_key_pem=new.private_key_pem)
    token = jwt.encode({"x": 1}, loaded, algorithm="EdDSA")
    assert jwt.decode(token, jwt.PyJWK(new.public_jwk), algorithms=["EdDSA"]) == {"x": 1}


def test_a_key_of_one_purpose_cannot_be_decrypted_as_another() -> None:
    new = KeyRing("tickets").generate()
    with pytest.raises(ValueError):  # noqa: PT011 (cryptography's message varies)
        KeyRing("tokens").private(kid=new.kid, private_key_pem=new.private_key_pem)


def test_keys_stored_before_the_shared_module_still_load() -> None:
    """The users service's keys were encrypted with this password before servicekit.signing
    existed; its purpose must keep reading them."""
    old_password = hashlib.sha256(b"turnstile-signing-key:" + settings.SECRET_KEY.encode()).digest()
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(old_password),
    )
    loaded = KeyRing("turnstile-signing-key").private(kid="old", private_key_pem=pem)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert loaded.public_key().public_bytes(*raw) == private.public_key().public_bytes(*raw)
