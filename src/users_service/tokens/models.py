from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class SigningKey(models.Model):
    """An Ed25519 key pair that signs access tokens.

    The private key is stored PEM-encrypted with a key derived from SECRET_KEY. Exactly one
    key is active (`retired_at` is null); retired keys stay published in the JWKS until the
    last token they signed has expired.
    """

    kid = models.CharField(max_length=64, primary_key=True)
    algorithm = models.CharField(max_length=16, default="EdDSA")
    private_key_pem = models.BinaryField()
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["algorithm"],
                condition=models.Q(retired_at__isnull=True),
                name="signing_key_one_active",
            )
        ]

    def __str__(self) -> str:
        return self.kid


class RefreshToken(models.Model):
    """One refresh token of a family (one login, a session). Only its SHA-256 is stored.

    Using a token rotates it (`used_at` set, a successor issued in the same family).
    Presenting a used token again means it leaked: the whole family is revoked.
    `family_started_at` is the login that started the family, copied to each of its tokens:
    no token of the family lives past it plus `SESSION_MAX_AGE_SECONDS`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    family = models.UUIDField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="refresh_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    family_started_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="refresh_expires_idx")]

    def __str__(self) -> str:
        return f"refresh {self.id} (family {self.family})"
