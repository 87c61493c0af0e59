"""Signing keys: creation, rotation, and the in-process cache of decrypted private keys."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from servicekit.signing import KeyRing
from users_service.tokens.models import SigningKey

# The purpose is part of the at-rest encryption key: it must not change, or stored keys can
# no longer be read.
_keys = KeyRing("turnstile-signing-key")


def signing_key_create() -> SigningKey:
    new = _keys.generate()
    return SigningKey.objects.create(
        kid=new.kid, private_key_pem=new.private_key_pem, public_jwk=new.public_jwk
    )


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
    return _keys.private(kid=key.kid, private_key_pem=bytes(key.private_key_pem))


def published_keys_cutoff() -> timedelta:
    """How long a retired key stays published: the longest a token it signed can live."""
    longest = max(settings.JWT_ACCESS_TOKEN_SECONDS, settings.JWT_SERVICE_TOKEN_SECONDS)
    return timedelta(seconds=longest + settings.JWT_LEEWAY_SECONDS)
