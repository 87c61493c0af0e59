"""Small library shared by the Turnstile services.

It holds what every service needs in the same shape: settings read from the environment,
JWT verification against the users service's JWKS, problem+json errors, health checks,
pagination, and the transactional outbox. It imports no service.
"""
