"""Batches of work on a few threads at once (decoding streams), handed back in order.

The work is CTranslate2 calls, which release the GIL: on a CPU two batches decoded side by side,
one thread each, finish sooner than one after the other on two threads each (`models.decode_streams`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def balanced_batches(items: Sequence[T], most: int, streams: int, cost: Callable[[T], float]) -> list[list[T]]:
    """`items` in batches of at most `most`: consecutive groups of `streams` batches (as even in size
    as can be), each group's `cost` shared as evenly as can be among its batches (longest first, each
    to the cheapest batch with room), so that no stream idles while another decodes a long batch
    alone. A batch keeps its items in their order. (Decoding does not depend on what else is in a batch.)"""
    if not items:
        return []
    groups = math.ceil(len(items) / (streams * max(1, most)))
    size = math.ceil(len(items) / groups)
    return [batch for g in range(0, len(items), size) for batch in _shared(items[g:g + size], streams, cost)]


def _shared(items: Sequence[T], count: int, cost: Callable[[T], float]) -> list[list[T]]:
    room = math.ceil(len(items) / count)
    batches: list[list[int]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for i in sorted(range(len(items)), key=lambda i: -cost(items[i])):
        b = min((b for b in range(count) if len(batches[b]) < room), key=lambda b: loads[b])
        batches[b].append(i)
        loads[b] += cost(items[i])
    ordered = sorted((sorted(batch) for batch in batches if batch), key=lambda batch: batch[0])
    return [[items[i] for i in batch] for batch in ordered]


def in_streams(batches: Sequence[T], work: Callable[[T], R], streams: int) -> Iterator[R]:
    """`work(batch)` for each batch, `streams` at a time, results yielded in the batches' order.
    At most two batches per stream are in flight, so results wait in memory only briefly; an
    exception in one is raised here, and the batches not started are dropped."""
    if streams <= 1:
        yield from map(work, batches)
        return
    pool = ThreadPoolExecutor(streams, thread_name_prefix="toolkit-decode")
    pending: deque = deque()
    try:
        for batch in batches:
            pending.append(pool.submit(work, batch))
            if len(pending) >= 2 * streams:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
