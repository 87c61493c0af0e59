"""Transactional outbox: domain messages are rows written in the same transaction as the change
they describe; a relay publishes them to the bus after commit (see `servicekit.outbox.relay`)."""
