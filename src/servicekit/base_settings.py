"""Settings every service shares. A service's settings module star-imports this and then
sets its own apps, URLs and database.

Secrets have no default: SECRET_KEY must come from the environment (the development stack
and the test runner generate one). DEBUG is off unless DEBUG=true is set.
"""

from __future__ import annotations

import ipaddress

from servicekit.conf import env_bool, env_int, env_list, env_str

SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

# Every public path answers with and without a trailing slash by itself (see
# servicekit.urls.route), so Django must not redirect.
APPEND_SLASH = False

SHARED_APPS = [
    "django.contrib.contenttypes",
    "rest_framework",
    "django.contrib.staticfiles",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI, served by the service itself
    "servicekit",
]

# The security headers come from the two outermost middlewares, so every response carries
# them, even one a later middleware answers by itself (a 414, the booking fast path).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "servicekit.middleware.UrlLengthLimitMiddleware",
    # Static files (the docs UIs' scripts) straight from the installed packages: nothing to
    # collect, no CDN, no other server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "servicekit.middleware.DatabaseUnavailableMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = True

# Limits of a request body (servicekit.parsers): past the size, a 413 problem before
# parsing; past the depth or the string length, a 400 problem before any field is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024)
MAX_URL_LENGTH = env_int("MAX_URL_LENGTH", 4096)
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 32)
JSON_MAX_STRING_LENGTH = env_int("JSON_MAX_STRING_LENGTH", 16 * 1024)

# Security headers (docs/security.md, "Security headers and health"): nosniff,
# Referrer-Policy and, on HTTPS requests, HSTS from SecurityMiddleware; X-Frame-Options from
# XFrameOptionsMiddleware.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# HSTS is sent only on requests that came over HTTPS. 0 (development) sends none; production
# behind TLS sets it, e.g. 31536000 (a year).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
# Behind a proxy that terminates TLS, the name of the header it sets to "https" on requests
# that came over TLS (e.g. X-Forwarded-Proto). Trust it only if the proxy always sets or
# strips it; unset, a request is HTTPS only if it reached the service over TLS.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER", "")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _proxy_ssl_header.strip().upper().replace("-", "_"),
        "https",
    )

# The proxies (load balancers) in front, as CIDRs, e.g. "10.0.0.0/8,2001:db8::/32": their
# X-Forwarded-For hops are believed, and the client is the first untrusted hop from the
# right (servicekit.clients.client_address). Empty: the client is the TCP peer, and
# X-Forwarded-For is ignored. Checked here, so a typo stops the service at start.
TRUSTED_PROXIES = [
    str(ipaddress.ip_network(cidr, strict=False)) for cidr in env_list("TRUSTED_PROXIES", [])
]

# Tokens: issued by the users service, verified locally everywhere.
JWT_ISSUER = env_str("JWT_ISSUER", "turnstile-users")
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "turnstile")
JWT_JWKS_URL = env_str("JWT_JWKS_URL", "http://127.0.0.1:8000/.well-known/jwks.json")
JWT_JWKS_CACHE_SECONDS = env_int("JWT_JWKS_CACHE_SECONDS", 300)
# A token naming an unknown `kid` triggers at most one JWKS fetch per this many seconds per
# process (after a failed fetch: 1 s, doubling up to this), so made-up kids cannot flood
# the users service.
JWT_JWKS_MIN_REFETCH_SECONDS = env_int("JWT_JWKS_MIN_REFETCH_SECONDS", 30)
JWT_LEEWAY_SECONDS = env_int("JWT_LEEWAY_SECONDS", 10)

NATS_URL = env_str("NATS_URL", "nats://127.0.0.1:4222")

# Bounded growth (servicekit.retention, docs/operations/retention.md): each worker deletes
# its rows past their retention, looking at most this often.
PRUNE_INTERVAL_SECONDS = float(env_str("PRUNE_INTERVAL_SECONDS", "60"))
# A published outbox message is kept this long (for a person tracing a message), then the
# relay deletes it. Read by the services that have an outbox (users, booking).
OUTBOX_SENT_RETENTION_SECONDS = env_int("OUTBOX_SENT_RETENTION_SECONDS", 24 * 3600)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["servicekit.auth.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["servicekit.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["servicekit.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "servicekit.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "servicekit.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "servicekit.problems.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # A time of day is wall-clock time without an offset (the schema says so too:
    # servicekit.openapi.TIME_OF_DAY_PATTERN); ISO 8601 parsing would drop an offset silently.
    "TIME_INPUT_FORMATS": ["%H:%M:%S.%f", "%H:%M:%S", "%H:%M"],
}

SPECTACULAR_SETTINGS = {
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # The docs page loads its scripts from this service (drf-spectacular-sidecar), never
    # from a CDN: it works offline and runs no third-party code. (ReDoc is not offered: its
    # page fetches its logo from the vendor's CDN.)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # A request with a Host header not in ALLOWED_HOSTS is answered 400; a traceback in
        # the log for each one would let any client flood it.
        "django.security.DisallowedHost": {"level": "CRITICAL"},
        # Django logs every 4xx answer as a warning. They are the service saying no as it
        # should (sold out, a hold limit, a bad token), most of a flash sale's answers: a
        # line each, written under the handler's lock by every thread, cost the sale about
        # 6% of the web workers' time (py-spy). 5xx answers are still logged.
        "django.request": {"level": env_str("LOG_LEVEL_DJANGO_REQUEST", "ERROR")},
    },
}
