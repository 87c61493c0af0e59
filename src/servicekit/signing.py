"""Ed25519 signing keys a service keeps in its own database: made, encrypted at rest, loaded
and published as JWKs. The users service signs access tokens with them, the booking service
ticket codes; each keeps its keys in its own model and decides when to rotate them.

A private key is stored PEM-encrypted with a key derived from SECRET_KEY and a purpose (one
per kind of key), so a database dump alone cannot sign anything, and a key of one kind
cannot be decrypted as another.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class NewKey:
    """A freshly made key pair, ready to be stored: `private_key_pem` is encrypted."""

    kid: str
    private_key_pem: bytes
    public_jwk: dict[str, Any]
    private: Ed25519PrivateKey


def kid_for(public_raw: bytes) -> str:
    """A key's id: derived from the public key, so it names that key and no other."""
    return base64.urlsafe_b64encode(hashlib.sha256(public_raw).digest()[:12]).decode().rstrip("=")


def public_jwk(private: Ed25519PrivateKey, *, kid: str) -> dict[str, Any]:
    """The public half as a JWK (OKP, Ed25519) with its `kid`, `alg` and `use`."""
    jwk: dict[str, Any] = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    return jwk


class KeyRing:
    """The keys of one purpose: makes them, and keeps the decrypted private keys of this
    process in memory (decrypting a PEM takes longer than a signature)."""

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._lock = threading.Lock()

    def _pem_password(self) -> bytes:
        return hashlib.sha256(f"{self.purpose}:".encode() + settings.SECRET_KEY.encode()).digest()

    def generate(self) -> NewKey:
        private = Ed25519PrivateKey.generate()
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        kid = kid_for(raw)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._pem_password()),
        )
        with self._lock:
            self._private[kid] = private
        return NewKey(
            kid=kid, private_key_pem=pem, public_jwk=public_jwk(private, kid=kid), private=private
        )

    def private(self, *, kid: str, private_key_pem: bytes) -> Ed25519PrivateKey:
        """The stored key `kid`, decrypted (once per process)."""
        with self._lock:
            cached = self._private.get(kid)
        if cached is not None:
            return cached
        loaded = serialization.load_pem_private_key(bytes(private_key_pem), self._pem_password())
        if not isinstance(loaded, Ed25519PrivateKey):
            raise TypeError(f"signing key {kid} is not Ed25519")
        with self._lock:
            self._private[kid] = loaded
        return loaded
