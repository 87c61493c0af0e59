-- One batch of ticket holds for one event, in one statement ($1 the event; $2, $3 the asks'
-- customers and ticket counts in arrival order; $4 now; $5 the holds' expiry and $6 its
-- text; $7 the message type, $8 the producer; $9 the NOTIFY channel; $10 the hold limit;
-- $11 to $16 the rate limits' attempts, one per limit that is on: the ask's number, the
-- counter's key, its previous window's key, when its row expires, the cap, and what the
-- previous window weighs now, from servicekit.ratelimits.Counting).
-- The names in braces are filled in by database.py from the models and the inventory module
-- (so doubled braces are literal ones).
--
-- It runs right after `SELECT ... FOR UPDATE` of the event row, in the same implicit
-- transaction, so its snapshot is taken after the lock was granted: it reads the row, the
-- clock and the pending holds as they are now.
--
-- `counted` counts every attempt against the rate limits first, as servicekit.ratelimits
-- does alone (same keys, same purge of a few expired rows), and `judged` applies its sliding
-- window in the same floating-point arithmetic as `_Window.estimate`, so an ask past a limit
-- is `limited` here exactly when Python, given the totals this statement returns, refuses it.
-- The counters' rows stay locked until the commit; every statement that takes them takes
-- them in key order and no other lock after them but this event's, which a batch of this
-- event already holds, so no lock cycle can form.
--
-- `decided` walks the asks in arrival order, granting each one the tickets it asks for while
-- enough are left (first come, first served, as if they had come one by one), and refuses an
-- ask that would take its customer past the hold limit: `held` sums each customer's pending
-- holds of the event (one lookup of booking_event_user_pending_idx per customer of the batch)
-- and `holding` carries them, plus what the batch granted them so far, along the walk; such
-- an ask is `capped` when tickets were left for it. `granted` numbers the granted bookings.
-- The UPDATE is itself conditional and every INSERT depends on it, so even a wrong decision
-- could not oversell, and the CHECK (available_tickets >= 0) has the last word; an error
-- anywhere rolls back everything.
WITH RECURSIVE
attempt AS MATERIALIZED (
    SELECT t.i, t.n, t.k, t.p, t.e, t.cap, t.w
    FROM unnest($11::int[], $12::text[], $13::text[], $14::timestamptz[], $15::int[],
                $16::float8[]) WITH ORDINALITY AS t(n, k, p, e, cap, w, i)
),
purged AS (
    DELETE FROM {cache} WHERE cache_key IN (
        SELECT cache_key FROM {cache}
        WHERE expires < $4 AND cache_key <> ALL($12::text[])
        ORDER BY expires LIMIT {purge} FOR UPDATE SKIP LOCKED)
),
counted AS (
    INSERT INTO {cache} AS entry (cache_key, value, expires)
    SELECT k, count(*)::text, max(e) FROM attempt
    GROUP BY k
    ORDER BY k  -- every statement locks its keys in one order: no deadlock
    ON CONFLICT (cache_key) DO UPDATE SET
        value = (entry.value::bigint + EXCLUDED.value::bigint)::text
    RETURNING cache_key, value::bigint AS total
),
judged AS MATERIALIZED (
    SELECT t.i, t.n, c.total, coalesce(previous.value::bigint, 0) AS before,
           -- the attempt's number on its key: the total less the key's later attempts
           c.total - count(*) OVER (PARTITION BY t.k ORDER BY t.i
                                    ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
               AS number,
           t.cap, t.w
    FROM attempt t JOIN counted c ON c.cache_key = t.k
    LEFT JOIN {cache} AS previous ON previous.cache_key = t.p AND previous.expires >= $4
),
ask AS (
    SELECT a.n, a.user_id, a.tickets,
           EXISTS (SELECT 1 FROM judged j
                   WHERE j.n = a.n AND j.before::float8 * j.w + j.number::float8 > j.cap)
               AS limited
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
           a.tickets <= d.left_after AND NOT ok AND NOT a.limited, u.held,
           CASE WHEN ok THEN d.holding || jsonb_build_object(a.user_id, u.held + a.tickets)
                ELSE d.holding END
    FROM decided d JOIN ask a ON a.n = d.n + 1,
         LATERAL (SELECT coalesce((d.holding ->> a.user_id::text)::int, 0) AS held) u,
         LATERAL (SELECT NOT a.limited AND a.tickets <= d.left_after
                         AND u.held + a.tickets <= $10 AS ok) o
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
    SELECT gen_random_uuid(), $7, $8, 1, $4, {booking_created}, 0, ''
    FROM granted g, taken t, locked l
    RETURNING 1
),
notified AS (SELECT pg_notify($9, '') FROM taken)
-- open, price, currency, tickets left, the granted asks' numbers and their booking ids, the
-- rows booked, published and notified, the capped asks' numbers and what their customers
-- held, the database's clock, the earliest pending expiry (when some ask was refused or the
-- event is sold out), and each rate-limit attempt's key total and previous window's count.
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
       END,
       (SELECT coalesce(array_agg(total ORDER BY i), '{{}}') FROM judged),
       (SELECT coalesce(array_agg(before ORDER BY i), '{{}}') FROM judged)
FROM (VALUES (1)) AS one (x)  -- a row even for an unknown event: the counts' totals
LEFT JOIN locked ON true LEFT JOIN clock ON true
