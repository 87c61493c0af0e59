"""Payment providers. Card data never reaches the service: the client sends a provider
token, the provider charges it. A real gateway implements `PaymentProvider`; the sandbox is
the development default and knows the tokens of the contract."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from booking_service.payments.models import SandboxLedgerEntry


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str = ""
    failure_reason: str = ""
    retryable: bool = False


@dataclass(frozen=True)
class RefundResult:
    succeeded: bool
    reference: str = ""
    failure_reason: str = ""


class PaymentOutcomeUnknown(Exception):  # noqa: N818 (it is an outcome, not an error)
    """The provider could not say whether the charge happened (a timeout, a network error, a
    5xx). The charge may have gone through: ask again with the same idempotency key."""


class PaymentProvider(Protocol):
    """A gateway. `charge` with an idempotency key it has seen answers the first outcome
    (and charges nothing more); it raises `PaymentOutcomeUnknown` (or any error) when it
    cannot tell."""

    name: str

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult: ...

    def refund(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult: ...


class SandboxPaymentProvider:
    """Deterministic test gateway; a repeated idempotency key returns the first result.

    Its ledger is a table (`SandboxLedgerEntry`), so the service's processes share one
    gateway. `tok_chargeThenTimeout` charges, then raises `PaymentOutcomeUnknown` as a call
    that timed out would; asked again with the same key, it answers the success."""

    name = "sandbox"
    CHARGE_THEN_TIMEOUT = "tok_chargeThenTimeout"
    OUTCOMES: ClassVar[dict[str, ChargeResult]] = {
        "tok_visa": ChargeResult(succeeded=True),
        CHARGE_THEN_TIMEOUT: ChargeResult(succeeded=True),
        "tok_chargeDeclined": ChargeResult(succeeded=False, failure_reason="card_declined"),
        "tok_chargeDeclinedInsufficientFunds": ChargeResult(
            succeeded=False, failure_reason="insufficient_funds"
        ),
        "tok_processingError": ChargeResult(
            succeeded=False, failure_reason="processing_error", retryable=True
        ),
    }

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        outcome = self.OUTCOMES.get(
            token, ChargeResult(succeeded=False, failure_reason="invalid_token")
        )
        entry, created = SandboxLedgerEntry.objects.get_or_create(
            operation_key=f"charge:{idempotency_key}",
            defaults={
                "token": token,
                "amount": amount,
                "currency": currency,
                "succeeded": outcome.succeeded,
                "reference": f"sbx_ch_{uuid.uuid4().hex}" if outcome.succeeded else "",
                "failure_reason": outcome.failure_reason,
                "retryable": outcome.retryable,
            },
        )
        if created and token == self.CHARGE_THEN_TIMEOUT:
            raise PaymentOutcomeUnknown("sandbox: charged, but the answer timed out")
        return ChargeResult(
            succeeded=entry.succeeded,
            reference=entry.reference,
            failure_reason=entry.failure_reason,
            retryable=entry.retryable,
        )

    def refund(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        entry, _ = SandboxLedgerEntry.objects.get_or_create(
            operation_key=f"refund:{idempotency_key}",
            defaults={
                "amount": amount,
                "currency": currency,
                "succeeded": True,
                "reference": f"sbx_re_{uuid.uuid4().hex}",
            },
        )
        return RefundResult(succeeded=entry.succeeded, reference=entry.reference)


def get_payment_provider() -> PaymentProvider:
    factory = import_string(settings.PAYMENT_PROVIDER)
    provider: PaymentProvider = factory()
    return provider
