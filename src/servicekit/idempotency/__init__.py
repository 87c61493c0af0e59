"""`Idempotency-Key` for unsafe requests, with Stripe's semantics.

The first request with a key runs and its response is stored (24 h by default); a retry
with the same key and the same body gets that response again (`Idempotent-Replayed: true`),
the same key with a different body is refused with 422, and a retry that arrives while the
first is still running gets 409. Keys are scoped per caller and per endpoint.

Use `IdempotentMixin` on an APIView (it covers POST).
"""
