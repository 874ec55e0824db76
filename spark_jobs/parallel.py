"""Work on several tables at once from one step.

A step that loops over tables (ingesting sources, deleting an erased person's rows, vacuuming)
spends most of its time waiting: on small data, a Spark job's planning, scheduling and Delta
commit take longer than its tasks. Spark runs jobs submitted from several threads of one
session concurrently (a classic session and a Spark Connect session alike), so these loops hand
their tables to a few threads (``CDP_TABLE_PARALLELISM``). Writes to shared tables from those
threads must be idempotent and retried on a Delta write conflict, as every bookkeeping write is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def completed(work: Callable[[Item], Result], items: Iterable[Item], threads: int) -> Iterator[tuple[Item, Result]]:
    """(item, work(item)) for every item as each finishes, up to ``threads`` at a time; with one
    thread, in order and in the calling thread. An exception stops the items not started yet and
    is raised once the running ones finish (their tables stay consistent: a Delta commit is
    all or nothing)."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        for item in items:
            yield item, work(item)
        return
    pool = ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="cdp-table")
    futures: dict[Future, Item] = {pool.submit(work, item): item for item in items}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)


def run_all(work: Callable[[Item], Result], items: Iterable[Item], threads: int) -> list[Result]:
    """work(item) for every item, up to ``threads`` at a time; the results in the items' order."""
    items = list(items)
    results = dict(completed(lambda index: work(items[index]), range(len(items)), threads))
    return [results[index] for index in range(len(items))]
