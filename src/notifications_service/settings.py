"""Settings of the notifications service.

Every value comes from the environment; docs/operations/configuration.md has them all.
"""

from servicekit.base_settings import *  # noqa: F403
from servicekit.conf import database_from_env, env_bool, env_int, env_str

SERVICE_NAME = "notifications"

INSTALLED_APPS = [
    *SHARED_APPS,  # noqa: F405
    "notifications_service.contacts",
    "notifications_service.inbox",
    "notifications_service.notifications",
    "notifications_service.webhooks",
]

ROOT_URLCONF = "notifications_service.urls"
WSGI_APPLICATION = "notifications_service.wsgi.application"
DATABASES = {"default": database_from_env()}

# Consumers: one durable JetStream pull consumer per purpose (see inbox.consumers).
NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS = env_int("NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS", 30)
# A message whose handler fails this many deliveries goes to the dead-letter table.
NOTIFICATIONS_CONSUMER_MAX_DELIVER = env_int("NOTIFICATIONS_CONSUMER_MAX_DELIVER", 5)
NOTIFICATIONS_CONSUMER_BATCH = env_int("NOTIFICATIONS_CONSUMER_BATCH", 50)
# A handled message's id is kept this long, then its consumer deletes it. It must outlive any
# redelivery of the message: the stream keeps messages 30 days (servicekit.bus), and a
# message handled but not acknowledged (a crash, a lost ack) can come back until then; the
# relay's republish after a crash is covered too. Shorter only in tests and the soak.
PROCESSED_MESSAGE_RETENTION_SECONDS = env_int("PROCESSED_MESSAGE_RETENTION_SECONDS", 35 * 24 * 3600)

# Email: Django's SMTP backend. The development stack runs a local SMTP sink that keeps
# every message as an .eml file under MAIL_DIR.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Turnstile <no-reply@turnstile.local>")
MAIL_DIR = env_str("MAIL_DIR", "")

# Deliveries (email and webhooks): capped exponential backoff between attempts.
DELIVERY_RETRY_BASE_SECONDS = float(env_str("DELIVERY_RETRY_BASE_SECONDS", "2"))
DELIVERY_RETRY_MAX_SECONDS = float(env_str("DELIVERY_RETRY_MAX_SECONDS", "3600"))
DELIVERY_LEASE_SECONDS = env_int("DELIVERY_LEASE_SECONDS", 120)
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", 15)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 15)
# A sent email's delivery and a delivered webhook (with its attempt log) are kept this long,
# then the dispatcher deletes them; the notification itself stays (the user's list).
DELIVERY_RETENTION_SECONDS = env_int("DELIVERY_RETENTION_SECONDS", 7 * 24 * 3600)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 5)  # to connect, and per read
# One attempt in all, however slowly the receiver answers; and how much of its answer is read.
WEBHOOK_DEADLINE_SECONDS = float(env_str("WEBHOOK_DEADLINE_SECONDS", "10"))
WEBHOOK_RESPONSE_MAX_BYTES = env_int("WEBHOOK_RESPONSE_MAX_BYTES", 64 * 1024)
# Webhook URLs that resolve to loopback or private addresses are refused unless allowed
# (development and tests deliver to 127.0.0.1).
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=DEBUG)  # noqa: F405
# How many webhook endpoints one organizer may register: each is a stream of outgoing POSTs.
WEBHOOK_MAX_ENDPOINTS_PER_OWNER = env_int("WEBHOOK_MAX_ENDPOINTS_PER_OWNER", 20)

SPECTACULAR_SETTINGS = {
    **SPECTACULAR_SETTINGS,  # noqa: F405
    "TITLE": "Turnstile notifications service",
    "DESCRIPTION": (
        "Notifications built from the domain messages on the bus, email delivery, and signed "
        "webhooks for organizers."
    ),
}

HEALTH_CHECKS = [
    "notifications_service.inbox.health.check_consumers",
    "notifications_service.notifications.health.check_email_deliveries",
]
