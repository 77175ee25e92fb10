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


def balanced_batches(items: Sequence[T], most: int, streams: int) -> list[Sequence[T]]:
    """`items` in consecutive batches of at most `most`, as many as a multiple of `streams` needs and
    as even as can be, so that no stream idles while another decodes a batch alone (12 windows on 2
    streams: 6 + 6, not 8 + 4)."""
    if not items:
        return []
    count = streams * math.ceil(len(items) / (streams * max(1, most)))
    size = math.ceil(len(items) / count)
    return [items[i:i + size] for i in range(0, len(items), size)]


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
