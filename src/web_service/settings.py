"""Settings of the web service: the pages people use, in front of the three APIs.

Its own database holds Django sessions only; everything else it reads and writes through
the other services' public APIs (web_service.api). Every value comes from the environment.
"""

import copy
import importlib.util

from servicekit.base_settings import *  # noqa: F403
from servicekit.conf import database_from_env, env_bool, env_int, env_str

SERVICE_NAME = "web"

# The organizer and door-staff pages are an app of their own, plugged in when present.
ORGANIZER_APP = "web_service.organizer"
_has_organizer = importlib.util.find_spec(ORGANIZER_APP) is not None

INSTALLED_APPS = [
    "django.contrib.sessions",
    "django.contrib.messages",
    *SHARED_APPS,  # noqa: F405
    "web_service.apps.WebConfig",
    *([ORGANIZER_APP] if _has_organizer else []),
]

MIDDLEWARE = [
    *MIDDLEWARE[:4],  # noqa: F405  (security headers, URL length, static files)
    "django.contrib.sessions.middleware.SessionMiddleware",
    *MIDDLEWARE[4:],  # noqa: F405
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csrf",
                "django.contrib.messages.context_processors.messages",
                "web_service.context.site",
            ]
        },
    }
]

ROOT_URLCONF = "web_service.urls"
WSGI_APPLICATION = "web_service.wsgi.application"
DATABASES = {"default": database_from_env()}
STATIC_URL = "/static/"

USERS_API_URL = env_str("USERS_API_URL", "http://127.0.0.1:8000").rstrip("/")
BOOKING_API_URL = env_str("BOOKING_API_URL", "http://127.0.0.1:8001").rstrip("/")
NOTIFICATIONS_API_URL = env_str("NOTIFICATIONS_API_URL", "http://127.0.0.1:8002").rstrip("/")
# How long the web service waits for one API answer before it shows the page's error.
API_TIMEOUT_SECONDS = float(env_str("API_TIMEOUT_SECONDS", "10"))

# A user's tokens live in the session, server-side; the browser holds only the session id,
# in a cookie scripts cannot read and other sites' forms do not send.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = "turnstile_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Behind TLS set it true; the development stack is plain HTTP on 127.0.0.1.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# Never longer than the users service's session (SESSION_MAX_AGE_SECONDS there, 30 days).
SESSION_COOKIE_AGE = env_int("WEB_SESSION_COOKIE_AGE", 14 * 24 * 3600)
CSRF_TRUSTED_ORIGINS = [
    origin for origin in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if origin.strip()
]
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

LOGIN_URL = "/login"

# httpx logs every call at INFO: a line per API call of every page.
LOGGING = copy.deepcopy(LOGGING)  # noqa: F405
LOGGING["loggers"]["httpx"] = {"level": "WARNING"}  # type: ignore[index]

# Pages are HTML; the DRF views here are the health checks only.
X_FRAME_OPTIONS = "DENY"
SPECTACULAR_SETTINGS = {
    **SPECTACULAR_SETTINGS,  # noqa: F405
    "TITLE": "Turnstile web service",
    "DESCRIPTION": "Pages for people; its only JSON answers are the health checks.",
}

# The pages use no message bus: readiness is their database (the APIs' own readiness is
# theirs to answer).
HEALTH_CHECK_BUS = False
