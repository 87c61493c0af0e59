"""`dev.py bench`: the flash-sale benchmark.

One run, on fresh embedded PostgreSQL and NATS and the real services under granian (or
gunicorn): two booking instances, the outbox relay and the sweeper. Before measuring it
seeds 10,000 upcoming events, a customer with 1,000 bookings and, with `--preload N`, a
past season of N bookings; then, after a warm-up:

1. database limit: pgbench runs the minimal correct booking transaction (a conditional
   UPDATE of one inventory row and an INSERT of a booking, durable commits);
2. HTTP floor: an authenticated no-op (`GET /api/whoami`) through the same servers;
3. events list: `GET /api/events/?page_size=50` over the 10,000 events;
4. a customer's bookings list: `GET /api/bookings/` of the customer with 1,000 bookings;
5. the flash sale: one event of `--tickets` (50,000) tickets, 64 connections,
   `POST /api/bookings/` of 1-4 tickets until sold out, then 5 more seconds of sold-out
   traffic. Buyers are real: the service's hold limit per customer stays, and there are
   enough customers (twice the tickets over the limit) that it never ends the sale early;
   each connection books as its customers in turn;
6. correctness: tickets in bookings = tickets, available = 0, conservation, no 5xx, every
   201 has its row.

Load comes from wrk with `load.lua` (one connection per wrk thread, every request timed).
Each booking instance takes its share of the connections (one wrk process each). During
runs 2-5 the whole stack's CPU time is sampled from /proc (`cpu`), so each is also a cost
in CPU per request. Writes JSON, a Markdown table and a PNG chart; prints the JSON path
last. The modules: `stack` (processes), `seed` (data), `load` (wrk, pgbench), `cpu`,
`measures` (figures and targets), `report` (table, chart), `run` (the run).
"""

from devstack.bench.run import main
from devstack.bench.stack import Stack, bench_stack

__all__ = ["Stack", "bench_stack", "main"]
