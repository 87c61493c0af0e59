from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from django.core.management import CommandError, call_command

from servicekit.outbox.models import OutboxMessage
from servicekit.testing import current_database_url
from users_service.accounts.models import Role, User
from users_service.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_PASSWORD = "operator-Secret-77"


def create_admin(*args: str) -> str:
    out = io.StringIO()
    call_command("create_admin", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def _admin_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNSTILE_ADMIN_PASSWORD", ADMIN_PASSWORD)


class TestCreateAdmin:
    def test_creates_a_new_admin(self) -> None:
        out = create_admin("--email", "ops@example.com")
        user = User.objects.get(email="ops@example.com")
        assert user.role == Role.ADMIN
        assert user.check_password(ADMIN_PASSWORD)
        assert out.strip() == f"created a new admin {user.id} (ops@example.com)"
        assert OutboxMessage.objects.filter(type="user.registered").count() == 1

    def test_refuses_an_existing_email(self, make_user: Callable[..., User]) -> None:
        squatter = make_user(email="ops@example.com")
        before = User.objects.values().get(pk=squatter.pk)
        with pytest.raises(CommandError, match=r"refused: .*already exists.*--promote-existing"):
            create_admin("--email", "OPS@example.com")
        assert User.objects.values().get(pk=squatter.pk) == before
        assert User.objects.count() == 1

    def test_promotes_an_existing_account_when_asked(self, make_user: Callable[..., User]) -> None:
        existing = make_user(email="ops@example.com")
        out = create_admin("--email", "ops@example.com", "--promote-existing")
        existing.refresh_from_db()
        assert existing.role == Role.ADMIN
        # The account keeps its own password; the one given is not set.
        assert existing.check_password(PASSWORD)
        assert not existing.check_password(ADMIN_PASSWORD)
        assert out.strip() == (
            f"promoted existing account {existing.id} (ops@example.com) to admin "
            "(password unchanged)"
        )

    def test_refuses_a_weak_password(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TURNSTILE_ADMIN_PASSWORD", "12345")
        with pytest.raises(CommandError, match="refused"):
            create_admin("--email", "ops@example.com")
        assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_non_zero_on_refusal(make_user: Callable[..., User]) -> None:
    existing = make_user(email="ops@example.com")
    env = {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "DJANGO_SETTINGS_MODULE": "users_service.settings",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "users_service", "create_admin", "--password-stdin", *args],
            input=f"{ADMIN_PASSWORD}\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = run("--email", "ops@example.com")
    assert refused.returncode != 0
    assert "refused: an account with the email ops@example.com" in refused.stderr
    assert User.objects.get(pk=existing.pk).role == Role.CUSTOMER
    promoted = run("--email", "ops@example.com", "--promote-existing")
    assert promoted.returncode == 0, promoted.stderr
    assert f"promoted existing account {existing.id}" in promoted.stdout
    assert User.objects.get(pk=existing.pk).role == Role.ADMIN
