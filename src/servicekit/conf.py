"""Settings helpers: every value comes from the environment, with development defaults only
where a default cannot leak a secret."""

from __future__ import annotations

import os
import re
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"environment variable {name} is required")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# A rate: "<count>/<period>", the period in s, m, h or d with an optional multiple.
RATE = re.compile(r"(\d+)/([1-9]\d*)?([smhd])")


def env_rate(name: str, default: str) -> str | None:
    """A rate limit (servicekit.ratelimits): "40/h", "5/15m", or "off" (None). Checked here,
    so a typo stops the service at start."""
    value = env_str(name, default).strip().lower()
    if value == "off":
        return None
    if not RATE.fullmatch(value):
        raise ImproperlyConfigured(f'{name} must look like "20/h" or be "off", not {value!r}')
    return value


def _session_settings() -> list[tuple[str, int]]:
    """PostgreSQL settings each connection sets for itself (a URL's own `options` wins).

    - No statement waits forever: a stuck lock holder becomes a 503, not a hung worker.
    - No transaction stays open and idle: one whose client stopped talking mid-way (a
      paused process, a bug) is ended, with its locks, instead of blocking every buyer of
      the event it locked.
    - The server probes an idle connection every few seconds, so a client whose host died
      or was cut off (no FIN ever comes) is noticed in about a minute, not the operating
      system's two hours, and its locks, advisory ones included, are released.
    """
    wanted = [
        ("statement_timeout", env_int("DB_STATEMENT_TIMEOUT_MS", 30_000)),
        (
            "idle_in_transaction_session_timeout",
            env_int("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 60_000),
        ),
        ("tcp_keepalives_idle", 30),
        ("tcp_keepalives_interval", 10),
        ("tcp_keepalives_count", 3),
    ]
    return [(name, value) for name, value in wanted if value > 0]


def database_from_env(name: str = "DATABASE_URL") -> dict[str, Any]:
    """Django DATABASES entry from a URL; PostgreSQL only.

    Connections are persistent (CONN_MAX_AGE) and health-checked, so a restarted database
    costs one failed request at most instead of every request paying for a new connection.
    """
    url = env_str(name)
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 600))
    )
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"{name} must point at PostgreSQL, got {config.get('ENGINE')}")
    config["CONN_HEALTH_CHECKS"] = True
    options = config.setdefault("OPTIONS", {})
    if not config.get("HOST") and "host" in options:  # a Unix socket: ...?host=/path
        config["HOST"] = options.pop("host")
    if "options" not in options:
        options["options"] = " ".join(f"-c {name}={value}" for name, value in _session_settings())
    config["ATOMIC_REQUESTS"] = False
    return config
