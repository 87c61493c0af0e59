"""Flows that span the booking service's apps, and only those: cancel a booking (return its
tickets, then refund), cancel or change an event (its bookings and its inventory), pay for a
booking (the provider, then the booking), and the sweeper's rounds. The HTTP layer and the
worker commands call them; the apps below never call up into them."""
