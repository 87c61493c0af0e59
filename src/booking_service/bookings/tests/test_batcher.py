"""The batcher alone, with a fake executor: pure threading, no database."""

from __future__ import annotations

import threading
import uuid

from booking_service.bookings.batching.batcher import Ask, Decided, SoldOut, TicketBatcher

USER = uuid.uuid4()


def test_concurrent_asks_queue_behind_the_running_batch_and_go_together() -> None:
    """While one batch runs, the asks that arrive form the next one; each gets its own
    outcome."""
    entered, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def execute(event_id: int, batch: list[Ask]) -> Decided[str]:
        batches.append([ask.tickets for ask in batch])
        if len(batches) == 1:
            entered.set()
            release.wait(10)
        return Decided([f"booked {ask.tickets}" for ask in batch])

    batcher = TicketBatcher(execute)
    outcomes: dict[int, object] = {}

    def book(tickets: int) -> None:
        outcomes[tickets] = batcher.book(event_id=1, tickets=tickets, user_id=USER, address="a")

    first = threading.Thread(target=book, args=(1,))
    first.start()
    assert entered.wait(10)
    later = [threading.Thread(target=book, args=(n,)) for n in (2, 3, 4)]
    for thread in later:
        thread.start()
    while len(batcher._queues[1].waiting) < 3:
        threading.Event().wait(0.01)
    release.set()
    for thread in [first, *later]:
        thread.join(10)
    assert batches[0] == [1]
    assert sorted(batches[1]) == [2, 3, 4]
    assert outcomes == {n: f"booked {n}" for n in (1, 2, 3, 4)}
    assert batcher._queues == {}


def test_events_have_queues_of_their_own() -> None:
    seen: list[int] = []

    def execute(event_id: int, batch: list[Ask]) -> Decided[int]:
        seen.append(event_id)
        return Decided([event_id for _ in batch])

    batcher = TicketBatcher(execute)
    assert batcher.book(event_id=7, tickets=1, user_id=USER, address="a") == 7
    assert batcher.book(event_id=8, tickets=1, user_id=USER, address="a") == 8
    assert seen == [7, 8]


def test_a_failing_batch_answers_each_ask_with_the_error_and_the_next_batch_runs() -> None:
    calls = 0

    def execute(event_id: int, batch: list[Ask]) -> Decided[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database said no")
        return Decided(["booked" for _ in batch])

    batcher = TicketBatcher(execute)
    failed = batcher.book(event_id=1, tickets=1, user_id=USER, address="a")
    assert isinstance(failed, RuntimeError)
    assert batcher.book(event_id=1, tickets=1, user_id=USER, address="a") == "booked"


def test_an_executor_answering_the_wrong_number_of_asks_fails_the_batch() -> None:
    batcher: TicketBatcher[str] = TicketBatcher(lambda event_id, batch: Decided([]))
    assert isinstance(batcher.book(event_id=1, tickets=1, user_id=USER, address="a"), RuntimeError)


def test_sold_out_is_answered_from_memory_for_as_long_as_the_executor_says() -> None:
    clock = [100.0]
    calls = 0

    def execute(event_id: int, batch: list[Ask]) -> Decided[object]:
        nonlocal calls
        calls += 1
        return Decided([SoldOut(available=0) for _ in batch], sold_out_for=2.0)

    batcher = TicketBatcher(execute, clock=lambda: clock[0])
    assert batcher.book(event_id=1, tickets=1, user_id=USER, address="a") == SoldOut(0)
    clock[0] += 1.9
    assert batcher.book(event_id=1, tickets=1, user_id=USER, address="a") == SoldOut(0)
    assert calls == 1
    clock[0] += 0.2
    batcher.book(event_id=1, tickets=1, user_id=USER, address="a")
    assert calls == 2
