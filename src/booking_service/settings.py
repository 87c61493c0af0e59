"""Settings of the booking service.

Every value comes from the environment; docs/operations/configuration.md has them all.
"""

from decimal import Decimal

from servicekit.base_settings import *  # noqa: F403
from servicekit.conf import database_from_env, env_bool, env_int, env_rate, env_str

SERVICE_NAME = "booking"

INSTALLED_APPS = [
    "django.contrib.postgres",
    *SHARED_APPS,  # noqa: F405
    "servicekit.outbox",
    "servicekit.idempotency",
    "booking_service.events",
    "booking_service.resources",
    "booking_service.bookings",
    "booking_service.payments",
    "booking_service.tickets",
    "booking_service.actions",  # flows across the apps, and the sweeper command
]

ROOT_URLCONF = "booking_service.urls"
WSGI_APPLICATION = "booking_service.wsgi.application"
DATABASES = {"default": database_from_env()}

# A pending booking holds its inventory this long; then it expires and the inventory returns.
BOOKING_HOLD_SECONDS = env_int("BOOKING_HOLD_SECONDS", 600)
# The batched flash-sale path for plain ticket holds (booking_service.api.batched); false
# sends every request through the regular view (the benchmark's --regular-path compares the two).
BOOKING_FAST_PATH = env_bool("BOOKING_FAST_PATH", True)
# How long the batched booking path remembers that an event is sold out (see
# booking_service.bookings.batching).
BOOKING_SOLDOUT_CACHE_SECONDS = float(env_str("BOOKING_SOLDOUT_CACHE_SECONDS", "1.0"))
# How long a page of the public event listing is served from memory (0 turns it off).
BOOKING_EVENT_LIST_CACHE_SECONDS = float(env_str("BOOKING_EVENT_LIST_CACHE_SECONDS", "1.0"))
# At most this many tickets in one booking.
BOOKING_MAX_TICKETS = env_int("BOOKING_MAX_TICKETS", 10)
# At most this many tickets in all of one customer's pending holds of one event, so one
# customer cannot hoard an on-sale; paid (confirmed) bookings do not count.
BOOKING_MAX_HELD_TICKETS = env_int("BOOKING_MAX_HELD_TICKETS", BOOKING_MAX_TICKETS)
# Prices are in this currency (ISO 4217).
BOOKING_CURRENCY = env_str("BOOKING_CURRENCY", "USD")
BOOKING_MAX_PRICE = Decimal("1000000")
# The payment gateway: a dotted path to a PaymentProvider factory. The sandbox is the default.
PAYMENT_PROVIDER = env_str(
    "PAYMENT_PROVIDER", "booking_service.payments.providers.SandboxPaymentProvider"
)
# A payment still `pending` after this long has an unknown outcome (the provider timed out or
# failed, or the process died); the sweeper asks the provider again with the same idempotency
# key, every this often, until it answers. Longer than the provider call's own timeout.
PAYMENT_PENDING_TIMEOUT_SECONDS = env_int("PAYMENT_PENDING_TIMEOUT_SECONDS", 30)
# A hold whose payment is pending keeps its inventory at most this long past its expiry, so
# a charge that went through can still confirm it; after that the hold is released and a late
# success is refunded.
PAYMENT_PENDING_HOLD_GRACE_SECONDS = env_int("PAYMENT_PENDING_HOLD_GRACE_SECONDS", 600)
# A customer cannot cancel (and be refunded) a confirmed booking this long before its event
# or slot starts, nor after; 0 allows it up to the start. Admins always can.
BOOKING_REFUND_CUTOFF_SECONDS = env_int("BOOKING_REFUND_CUTOFF_SECONDS", 0)
# Sweeper period (release_expired_holds --loop).
BOOKING_SWEEP_INTERVAL_SECONDS = env_int("BOOKING_SWEEP_INTERVAL_SECONDS", 5)

# Rate limits (servicekit.ratelimits; docs/security.md has the table), counted
# before the work on both booking paths and on payments, shared by every process: "30/m",
# "5/15m" or "off". Per user, a buyer can still retry a busy on-sale every two seconds;
# per address, a generous ceiling (twenty buyers behind one NAT at their full per-user
# rate, hundreds at a human pace) that only a flood from one address reaches. Payments are
# tighter: a real buyer pays a few times, card testing tries many cards.
RATE_LIMIT_BOOKING_PER_USER = env_rate("RATE_LIMIT_BOOKING_PER_USER", "30/m")
RATE_LIMIT_BOOKING_PER_ADDRESS = env_rate("RATE_LIMIT_BOOKING_PER_ADDRESS", "600/m")
RATE_LIMIT_PAYMENT_PER_USER = env_rate("RATE_LIMIT_PAYMENT_PER_USER", "10/m")
RATE_LIMIT_PAYMENT_PER_ADDRESS = env_rate("RATE_LIMIT_PAYMENT_PER_ADDRESS", "300/m")

IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600)

SPECTACULAR_SETTINGS = {
    **SPECTACULAR_SETTINGS,  # noqa: F405
    "TITLE": "Turnstile booking service",
    "DESCRIPTION": "Events, resources, ticket and slot holds, bookings, payments, availability.",
}

HEALTH_CHECKS = ["servicekit.outbox.health.check_outbox_lag"]
