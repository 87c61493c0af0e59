"""Signing keys: creation, rotation, and the in-process cache of decrypted private keys."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from users_service.tokens.models import SigningKey

_private_keys: dict[str, Ed25519PrivateKey] = {}
_lock = threading.Lock()


def _pem_password() -> bytes:
    # Private keys at rest are encrypted with a key derived from SECRET_KEY, so a database
    # dump alone cannot sign tokens.
    return hashlib.sha256(b"turnstile-signing-key:" + settings.SECRET_KEY.encode()).digest()


def _kid_for(public_raw: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(public_raw).digest()[:12]).decode().rstrip("=")


def signing_key_create() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = _kid_for(raw)
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
    jwk.update({"kid": kid, "alg": "EdDSA", "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_pem_password()),
    )
    key = SigningKey.objects.create(kid=kid, private_key_pem=pem, public_jwk=jwk)
    with _lock:
        _private_keys[kid] = private
    return key


def signing_key_active() -> SigningKey:
    """The key that signs new tokens; created on first use."""
    key = SigningKey.objects.filter(retired_at__isnull=True).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            return signing_key_create()
    except IntegrityError:  # another process created it first
        return SigningKey.objects.get(retired_at__isnull=True)


def signing_key_rotate() -> SigningKey:
    """A new key signs from now on; the old one stays in the JWKS until its tokens expire."""
    with transaction.atomic():
        SigningKey.objects.select_for_update().filter(retired_at__isnull=True).update(
            retired_at=timezone.now()
        )
        return signing_key_create()


def signing_key_private(key: SigningKey) -> Ed25519PrivateKey:
    with _lock:
        cached = _private_keys.get(key.kid)
    if cached is not None:
        return cached
    loaded = serialization.load_pem_private_key(bytes(key.private_key_pem), _pem_password())
    if not isinstance(loaded, Ed25519PrivateKey):
        raise TypeError(f"signing key {key.kid} is not Ed25519")
    with _lock:
        _private_keys[key.kid] = loaded
    return loaded


def published_keys_cutoff() -> timedelta:
    """How long a retired key stays published: the longest a token it signed can live."""
    longest = max(settings.JWT_ACCESS_TOKEN_SECONDS, settings.JWT_SERVICE_TOKEN_SECONDS)
    return timedelta(seconds=longest + settings.JWT_LEEWAY_SECONDS)
