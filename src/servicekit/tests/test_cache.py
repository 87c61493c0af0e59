from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connections

THREADS = 8


def together(work: Callable[[], Any]) -> list[Any]:
    """`work` on THREADS threads at once, each with its own database connection."""
    start = threading.Barrier(THREADS)
    results: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            start.wait(10)
            result = work()
            with lock:
                results.append(result)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == THREADS
    return results


@pytest.mark.django_db(transaction=True)
class TestSharedCache:
    def test_concurrent_adds_of_one_key_succeed_once(self) -> None:
        shared = caches["shared"]
        assert sorted(together(lambda: shared.add("k", 1, 60))) == [False] * (THREADS - 1) + [True]

    def test_concurrent_increments_are_all_counted(self) -> None:
        shared = caches["shared"]
        assert shared.add("counter", 0, 60)
        together(lambda: [shared.incr("counter") for _ in range(5)])
        assert shared.get("counter") == THREADS * 5

    def test_an_expired_key_can_be_added_again_and_not_incremented(self) -> None:
        shared = caches["shared"]
        assert shared.add("gone", 5, -1)  # already expired
        with pytest.raises(ValueError, match="not found"):
            shared.incr("gone")
        assert shared.add("gone", 1, 60)
        assert shared.incr("gone") == 2
