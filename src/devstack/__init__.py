"""Development tooling: embedded PostgreSQL and NATS, the one-command stack, the test runner
and the checks. Never imported by a service."""
