"""Writes on users. Every change that others must learn about emits its message in the same
transaction (`user.registered`, `user.updated`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from servicekit.errors import InvalidFields, Problem
from servicekit.messages import UserMessage, UserRegistered, UserUpdated
from servicekit.outbox.services import outbox_emit
from servicekit.ratelimits import rate_limit
from users_service.accounts.models import SELF_SERVICE_ROLES, Role, User

UserMessageT = TypeVar("UserMessageT", bound=UserMessage)


def _user_message(model: type[UserMessageT], user: User) -> UserMessageT:
    return model(user_id=user.id, name=user.name, email=user.email, role=user.role)


def _email_taken(email: str, *, exclude: User | None = None) -> bool:
    qs = User.objects.filter(email__iexact=email.strip())
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs.exists()


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise _field_error("password", list(exc.messages)) from exc


def _email_changes(user: User, data: dict[str, Any]) -> bool:
    return "email" in data and data["email"].strip() != user.email


def _field_error(field: str, messages: list[str]) -> InvalidFields:
    return InvalidFields({field: messages})


def user_register(*, name: str, email: str, password: str, role: str = Role.CUSTOMER) -> User:
    """Self-registration: customer or organizer, never admin."""
    if role not in SELF_SERVICE_ROLES:
        raise _field_error("role", ["Choose customer or organizer."])
    user = User(name=name.strip(), email=email.strip(), role=role)
    _check_password(password, user)
    # Before the hash: a taken email is refused without paying for Argon2id.
    if _email_taken(user.email):
        raise _field_error("email", ["A user with this email already exists."])
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            outbox_emit(_user_message(UserRegistered, user))
    except IntegrityError as exc:  # a concurrent registration of the same email won
        raise _field_error("email", ["A user with this email already exists."]) from exc
    return user


class EmailTaken(Problem):
    status_code = 409
    default_detail = "An account with this email already exists; nothing was changed."
    default_code = "email-taken"


@dataclass(frozen=True)
class AdminCreated:
    user: User
    promoted: bool  # an existing account was made admin; its password was left as it was


def user_create_admin(
    *, name: str, email: str, password: str, promote_existing: bool = False
) -> AdminCreated:
    """An admin, from the `create_admin` management command.

    An existing account with that email is refused: whoever registered the address first
    would otherwise become admin. With `promote_existing` it is made admin, and keeps its
    own password (the one given is not set).
    """
    existing = User.objects.filter(email__iexact=email.strip()).first()
    if existing is not None:
        if not promote_existing:
            raise EmailTaken
        changed = user_change(
            user=existing, actor_is_admin=True, acting_on_self=False, data={"role": Role.ADMIN}
        )
        if changed:
            user_change_save(user=existing, changed=changed)
        return AdminCreated(user=existing, promoted=True)
    user = User(name=name.strip(), email=email.strip(), role=Role.ADMIN)
    _check_password(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            outbox_emit(_user_message(UserRegistered, user))
    except IntegrityError as exc:  # registered meanwhile
        raise EmailTaken from exc
    return AdminCreated(user=user, promoted=False)


# A change of either ends the account's other sessions (users_service.actions.user_update).
CREDENTIAL_FIELDS = frozenset({"email", "password"})


def user_change(
    *, user: User, actor_is_admin: bool, acting_on_self: bool, data: dict[str, Any]
) -> list[str]:
    """Check a profile change by the user or an admin and make it on `user`, unsaved; the
    fields it changed, for `user_change_save`. Only admins change roles.

    A password change always needs the current password (admins do not set other people's
    passwords). An email change needs it too, except from an admin acting on someone else:
    the admin does not know it, and their own session is what authorises them.
    """
    changed: list[str] = []
    needs_current_password = bool(data.get("password")) or (
        _email_changes(user, data) and (acting_on_self or not actor_is_admin)
    )
    # Checked before anything else, so a caller without the password learns nothing (not
    # even whether an address is taken). Each check counts against the account's limit
    # first, outside any transaction (a refused attempt still counts): a stolen access
    # token is not a way to guess the password.
    if needs_current_password:
        rate_limit(action="password_check", scope="user", key=str(user.pk))
        if not user.check_password(data.get("current_password") or ""):
            raise _field_error("current_password", ["The current password is not correct."])
    if "role" in data and data["role"] != user.role:
        if not actor_is_admin:
            raise Problem(
                "Only admins can change roles.", code="role-change-forbidden", status_code=403
            )
        if (
            user.role == Role.ADMIN
            and not User.objects.filter(role=Role.ADMIN).exclude(pk=user.pk).exists()
        ):
            raise Problem("The last admin cannot be demoted.", code="last-admin", status_code=409)
        user.role = data["role"]
        changed.append("role")
    if "name" in data and data["name"].strip() != user.name:
        user.name = data["name"].strip()
        changed.append("name")
    if _email_changes(user, data):
        if _email_taken(data["email"], exclude=user):
            raise _field_error("email", ["A user with this email already exists."])
        user.email = data["email"].strip()
        changed.append("email")
    if data.get("password"):
        _check_password(data["password"], user)
        user.set_password(data["password"])
        changed.append("password")
    return changed


def user_change_save(*, user: User, changed: list[str]) -> None:
    """Save what `user_change` changed and tell others (`user.updated`), in the caller's
    transaction if there is one. A concurrent change to the same email refuses it."""
    try:
        with transaction.atomic():
            user.save(update_fields=[*changed, "updated_at"])
            if set(changed) & {"name", "email", "role"}:
                outbox_emit(_user_message(UserUpdated, user))
    except IntegrityError as exc:
        raise _field_error("email", ["A user with this email already exists."]) from exc
