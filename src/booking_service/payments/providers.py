"""Payment providers. Card data never reaches the service: the client sends a provider
token, the provider charges it. A real gateway implements `PaymentProvider`; the sandbox is
the development default and knows the tokens of the contract."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


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


class PaymentProvider(Protocol):
    name: str

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult: ...

    def refund(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult: ...


class SandboxPaymentProvider:
    """Deterministic test gateway; a repeated idempotency key returns the first result."""

    name = "sandbox"
    OUTCOMES: dict[str, ChargeResult] = {
        "tok_visa": ChargeResult(succeeded=True),
        "tok_chargeDeclined": ChargeResult(succeeded=False, failure_reason="card_declined"),
        "tok_chargeDeclinedInsufficientFunds": ChargeResult(
            succeeded=False, failure_reason="insufficient_funds"
        ),
        "tok_processingError": ChargeResult(
            succeeded=False, failure_reason="processing_error", retryable=True
        ),
    }
    _seen: dict[str, ChargeResult | RefundResult] = {}
    _lock = threading.Lock()

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        with self._lock:
            seen = self._seen.get(f"charge:{idempotency_key}")
            if isinstance(seen, ChargeResult):
                return seen
            outcome = self.OUTCOMES.get(
                token, ChargeResult(succeeded=False, failure_reason="invalid_token")
            )
            if outcome.succeeded:
                outcome = ChargeResult(succeeded=True, reference=f"sbx_ch_{uuid.uuid4().hex}")
            self._seen[f"charge:{idempotency_key}"] = outcome
            return outcome

    def refund(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        with self._lock:
            seen = self._seen.get(f"refund:{idempotency_key}")
            if isinstance(seen, RefundResult):
                return seen
            result = RefundResult(succeeded=True, reference=f"sbx_re_{uuid.uuid4().hex}")
            self._seen[f"refund:{idempotency_key}"] = result
            return result


def get_payment_provider() -> PaymentProvider:
    factory = import_string(settings.PAYMENT_PROVIDER)
    provider: PaymentProvider = factory()
    return provider
