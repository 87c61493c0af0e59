"""Settings of the users service.

Every value comes from the environment; docs/operations/configuration.md has them all.
"""

from servicekit.base_settings import *  # noqa: F403
from servicekit.conf import database_from_env, env_int, env_rate

SERVICE_NAME = "users"

INSTALLED_APPS = [
    "django.contrib.auth",
    *SHARED_APPS,  # noqa: F405
    "servicekit.outbox",
    "users_service.accounts",
    "users_service.tokens",
]

ROOT_URLCONF = "users_service.urls"
WSGI_APPLICATION = "users_service.wsgi.application"
DATABASES = {"default": database_from_env()}

AUTH_USER_MODEL = "accounts.User"

# Argon2id at the OWASP recommendation (m = 19 MiB, t = 2, p = 1) or above; see
# users_service.accounts.hashers.
PASSWORD_HASHERS = ["users_service.accounts.hashers.Argon2idHasher"]
ARGON2_MEMORY_COST_KIB = env_int("ARGON2_MEMORY_COST_KIB", 19 * 1024)
ARGON2_TIME_COST = env_int("ARGON2_TIME_COST", 2)
ARGON2_PARALLELISM = env_int("ARGON2_PARALLELISM", 1)

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "users_service.accounts.validators.MaximumLengthValidator"},
]

# The users service reads its own public keys from its database instead of over HTTP.
JWT_JWKS_SOURCE = "users_service.tokens.selectors.jwks_document"
JWT_ACCESS_TOKEN_SECONDS = min(env_int("JWT_ACCESS_TOKEN_SECONDS", 15 * 60), 15 * 60)
JWT_REFRESH_TOKEN_SECONDS = env_int("JWT_REFRESH_TOKEN_SECONDS", 14 * 24 * 3600)
JWT_SERVICE_TOKEN_SECONDS = env_int("JWT_SERVICE_TOKEN_SECONDS", 3600)
# Absolute lifetime of a session (a refresh family), counted from its login: refreshing
# never carries it further.
SESSION_MAX_AGE_SECONDS = env_int("SESSION_MAX_AGE_SECONDS", 30 * 24 * 3600)

# Rate limits (servicekit.ratelimits; docs/security.md has the table):
# "<count>/<period>", the period in s, m, h or d with an optional multiple ("40/h",
# "5/15m"), or "off". Judged over a sliding window of that period, shared by every process
# through the service's database.
#
# An address can never use up an account's login budget alone (40 + 40 across a window
# edge < 100): an attack from one address never locks the owner out.
RATE_LIMIT_LOGIN_PER_ADDRESS = env_rate("RATE_LIMIT_LOGIN_PER_ADDRESS", "40/h")
RATE_LIMIT_LOGIN_PER_ACCOUNT = env_rate("RATE_LIMIT_LOGIN_PER_ACCOUNT", "100/h")
RATE_LIMIT_REGISTER_PER_ADDRESS = env_rate("RATE_LIMIT_REGISTER_PER_ADDRESS", "20/h")
RATE_LIMIT_REFRESH_PER_ADDRESS = env_rate("RATE_LIMIT_REFRESH_PER_ADDRESS", "300/m")
RATE_LIMIT_PASSWORD_CHECK_PER_USER = env_rate("RATE_LIMIT_PASSWORD_CHECK_PER_USER", "10/h")

SPECTACULAR_SETTINGS = {
    **SPECTACULAR_SETTINGS,  # noqa: F405
    "TITLE": "Turnstile users service",
    "DESCRIPTION": "Registration, login, JWT issuing (EdDSA, JWKS), profiles and roles.",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "users_service.accounts.models.Role",
        "SelfServiceRoleEnum": [("customer", "Customer"), ("organizer", "Organizer")],
    },
}

# `email` is unique through a case-insensitive functional constraint (accounts.User.Meta),
# which Django's system check does not recognise as unique.
SILENCED_SYSTEM_CHECKS = ["auth.E003"]
HEALTH_CHECKS = ["servicekit.outbox.health.check_outbox_lag"]
