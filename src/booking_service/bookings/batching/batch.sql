-- One batch of ticket holds for one event, in one statement ($1 the event; $2, $3 the asks'
-- customers and ticket counts in arrival order; $4 now; $5 the holds' expiry and $6 its
-- text; $7 the message type, $8 the producer; $9 the NOTIFY channel; $10 the hold limit).
-- The names in braces are filled in by database.py from the models and the inventory module
-- (so doubled braces are literal ones).
--
-- It runs right after `SELECT ... FOR UPDATE` of the event row, in the same implicit
-- transaction, so its snapshot is taken after the lock was granted: it reads the row, the
-- clock and the pending holds as they are now.
--
-- `decided` walks the asks in arrival order, granting each one the tickets it asks for while
-- enough are left (first come, first served, as if they had come one by one), and refuses an
-- ask that would take its customer past the hold limit: `held` sums each customer's pending
-- holds of the event (one lookup of booking_event_user_pending_idx per customer of the batch)
-- and `holding` carries them, plus what the batch granted them so far, along the walk; such
-- an ask is `capped` when tickets were left for it. `granted` numbers the granted bookings.
-- Each booking's message gets a time-ordered id (UUIDv7: servicekit.outbox.models), so
-- the outbox's unique index of ids grows at its right edge.
-- The UPDATE is itself conditional and every INSERT depends on it, so even a wrong decision
-- could not oversell, and the CHECK (available_tickets >= 0) has the last word; an error
-- anywhere rolls back everything.
WITH RECURSIVE
ask AS (
    SELECT a.n, a.user_id, a.tickets
    FROM unnest($2, $3) WITH ORDINALITY AS a(user_id, tickets, n)
),
locked AS MATERIALIZED (
    SELECT id, available_tickets, status, starts_at, organizer_id, name, price_per_ticket,
           currency
    FROM {events} WHERE id = $1
),
held AS MATERIALIZED (
    SELECT user_id, sum(tickets_booked)::int AS tickets
    FROM {bookings}
    WHERE event_id = $1 AND status = 'pending' AND user_id = ANY($2)
    GROUP BY user_id
),
clock AS MATERIALIZED (
    SELECT clock_timestamp() AS now, {on_sale} AS open
    FROM locked
),
decided (n, left_after, granted, capped, held, holding) AS (
    SELECT 0::bigint, CASE WHEN clock.open THEN locked.available_tickets ELSE 0 END, false,
           false, 0, (SELECT coalesce(jsonb_object_agg(user_id, tickets), '{{}}') FROM held)
    FROM locked, clock
  UNION ALL
    SELECT a.n, CASE WHEN ok THEN d.left_after - a.tickets ELSE d.left_after END, ok,
           a.tickets <= d.left_after AND NOT ok, u.held,
           CASE WHEN ok THEN d.holding || jsonb_build_object(a.user_id, u.held + a.tickets)
                ELSE d.holding END
    FROM decided d JOIN ask a ON a.n = d.n + 1,
         LATERAL (SELECT coalesce((d.holding ->> a.user_id::text)::int, 0) AS held) u,
         LATERAL (SELECT a.tickets <= d.left_after AND u.held + a.tickets <= $10 AS ok) o
),
granted AS MATERIALIZED (
    SELECT a.n, a.user_id, a.tickets, nextval(pg_get_serial_sequence('{bookings}', 'id')) AS id
    FROM ask a JOIN decided d USING (n)
    WHERE d.granted
),
taken AS (
    UPDATE {events} e SET available_tickets = e.available_tickets - g.total
    FROM (SELECT sum(tickets) AS total FROM granted) g
    WHERE e.id = $1 AND g.total > 0 AND e.available_tickets >= g.total
    RETURNING e.id
),
booked AS (
    INSERT INTO {bookings} (id, user_id, kind, event_id, tickets_booked, status, cancel_reason,
                            expires_at, amount, currency, created_at, updated_at)
    SELECT g.id, g.user_id, 'tickets', t.id, g.tickets, 'pending', '', $5,
           l.price_per_ticket * g.tickets, l.currency, $4, $4
    FROM granted g, taken t, locked l
    RETURNING 1
),
published AS (
    INSERT INTO {outbox} ({message_id}, type, producer, version, occurred_at, data, attempts,
                          last_error)
    SELECT {new_message_id}, $7, $8, 1, $4, {booking_created}, 0, ''
    FROM granted g, taken t, locked l
    RETURNING 1
),
notified AS (SELECT pg_notify($9, '') FROM taken)
-- open, price, currency, tickets left, the granted asks' numbers and their booking ids, the
-- rows booked, published and notified, the capped asks' numbers and what their customers
-- held, the database's clock, the earliest pending expiry (when some ask was refused or the
-- event is sold out).
SELECT clock.open, locked.price_per_ticket::numeric, locked.currency::text,
       (SELECT min(left_after) FROM decided),
       (SELECT coalesce(array_agg(n ORDER BY n), '{{}}') FROM granted),
       (SELECT coalesce(array_agg(id ORDER BY n), '{{}}') FROM granted),
       (SELECT count(*) FROM booked), (SELECT count(*) FROM published),
       (SELECT count(*) FROM notified),
       (SELECT coalesce(array_agg(n ORDER BY n), '{{}}') FROM decided WHERE capped),
       (SELECT coalesce(array_agg(held ORDER BY n), '{{}}') FROM decided WHERE capped),
       clock.now,
       CASE WHEN (SELECT count(*) FROM granted) < (SELECT count(*) FROM ask)
                 OR (SELECT min(left_after) FROM decided) = 0
            THEN (SELECT min(expires_at) FROM {bookings}
                  WHERE event_id = $1 AND status = 'pending')
       END
FROM locked, clock
