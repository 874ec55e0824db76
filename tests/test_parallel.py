"""The helper that lets a step work on several tables at once."""

from __future__ import annotations

import threading
import time

import pytest

from spark_jobs.parallel import completed, run_all


def test_every_item_runs_once_at_most_threads_at_a_time_and_results_keep_their_order():
    running, peak, lock = 0, 0, threading.Lock()

    def work(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return item * item

    assert run_all(work, range(12), threads=3) == [i * i for i in range(12)]
    assert peak == 3
    assert sorted(completed(work, [1, 2], threads=1)) == [(1, 1), (2, 4)]


def test_an_error_stops_the_items_not_started_and_is_raised_after_the_running_ones_finish():
    started, finished = [], []

    def work(item: int) -> int:
        started.append(item)
        if item == 0:
            raise ValueError("bad table")
        time.sleep(0.2)
        finished.append(item)
        return item

    with pytest.raises(ValueError, match="bad table"):
        run_all(work, range(20), threads=2)
    assert set(finished) == set(started) - {0}, "a started item was abandoned half-way"
    assert len(started) < 20, "items went on starting after the error"
