from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import connection, models
from django.db.models.functions import Upper


class Role(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    ORGANIZER = "organizer", "Organizer"
    ADMIN = "admin", "Admin"


SELF_SERVICE_ROLES = (Role.CUSTOMER, Role.ORGANIZER)


def email_canonical(email: str) -> str:
    """The email as the database compares it: trimmed, then its UPPER. Lookups
    (`email__iexact` is `UPPER(email) = UPPER(%s)`) and the unique constraint use the same,
    so every spelling that reaches an account (`cu\u017ftomer@`, long s, for `customer@`) has
    one form."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT UPPER(%s)", [email.strip()])
        row = cursor.fetchone()
    return str(row[0])


class UserManager(BaseUserManager["User"]):
    def get_by_email(self, email: str) -> User:
        return self.get(email__iexact=email.strip())


class User(AbstractBaseUser):
    """A person. `email` is unique whatever its case; the password is an Argon2id hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=150)
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CUSTOMER)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["name"]

    objects: ClassVar[UserManager] = UserManager()

    class Meta:
        constraints = [
            # UPPER, as `email__iexact` compares (see email_canonical).
            models.UniqueConstraint(Upper("email"), name="user_email_upper_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="user_role_valid"
            ),
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = self.email.strip()
        super().save(*args, **kwargs)
