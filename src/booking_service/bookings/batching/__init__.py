"""The flash-sale path for plain ticket holds: concurrent holds of one event share one
transaction. `batcher` is the threading, `database` runs a batch with `batch.sql`; the view
routed at `POST /api/bookings/` (`booking_service.api.batched`) uses them."""
