"""Unacked messages per queue without reading every one of them on every scrape.

kombu's Redis transport keeps each message handed to a worker in the hash `unacked`
(delivery tag -> [message, exchange, routing key]) and its delivery time in the sorted
set `unacked_index`, both written and removed together. At 50 sites there may be 50,000
of them (ETA tasks, a stuck worker): fetching and parsing them all took 300 ms a scrape.

`UnackedTracker` remembers each tag's queue and time, in chunks of consecutive times:

- new messages: `ZRANGEBYSCORE unacked_index (newest +inf`, then `HMGET` only those;
- acked ones: one `ZCOUNT` per chunk (O(log n) each, all in one pipeline); only a chunk
  whose count changed is read again;
- a safety net: if `ZCARD` disagrees with what is remembered on two scrapes in a row (a
  clock that stepped back; one disagreement may be an ack racing the reads), and every
  `RESYNC_EVERY` seconds, everything is read once again.

A scrape with nothing changed costs a few dozen O(log n) commands in one round trip.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"
CHUNK = 1000
RESYNC_EVERY = 600.0


class UnackedTracker:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.queue_of: dict[bytes, str] = {}
        self.chunks: list[list[tuple[float, bytes]]] = []  # sorted by time, oldest first
        self.counts: Counter[str] = Counter()
        self.synced_at = 0.0
        self.suspect = False  # ZCARD disagreed on the last scrape

    @property
    def newest(self) -> float | None:
        return self.chunks[-1][-1][0] if self.chunks else None

    def by_queue(self) -> Counter[str]:
        """The number of unacked messages of each queue (queue "" for unreadable ones)."""
        if time.monotonic() - self.synced_at > RESYNC_EVERY:
            self._resync()
            return self.counts
        pipe = self.client.pipeline(transaction=True)  # one snapshot of the index
        pipe.zcard(UNACKED_INDEX)
        newest = self.newest
        pipe.zrangebyscore(UNACKED_INDEX, f"({newest!r}" if newest is not None else "-inf", "+inf",
                           withscores=True)
        for chunk in self.chunks:
            pipe.zcount(UNACKED_INDEX, chunk[0][0], chunk[-1][0])
        total, fresh, *counts = pipe.execute()
        changed = [i for i, (chunk, n) in enumerate(zip(self.chunks, counts, strict=True)) if n != len(chunk)]
        if changed:
            pipe = self.client.pipeline(transaction=False)
            for i in changed:
                pipe.zrangebyscore(UNACKED_INDEX, self.chunks[i][0][0], self.chunks[i][-1][0], withscores=True)
            for i, now_in_range in zip(changed, pipe.execute(), strict=True):
                self._reconcile(i, now_in_range)
            self.chunks = [c for c in self.chunks if c]
        self._add([(score, tag) for tag, score in fresh if tag not in self.queue_of])
        if total != len(self.queue_of):
            if self.suspect:
                self._resync()
            self.suspect = not self.suspect
        else:
            self.suspect = False
        return self.counts

    def _reconcile(self, i: int, now_in_range: list[tuple[bytes, float]]) -> None:
        chunk = self.chunks[i]
        present = {tag for tag, _score in now_in_range}
        for _score, tag in chunk:
            if tag not in present:
                self.counts[self.queue_of.pop(tag)] -= 1
        self.chunks[i] = [(score, tag) for score, tag in chunk if tag in present]
        # Messages within this chunk's times that it did not know (a tie, a clock step)
        # are left to the ZCARD check, which resyncs.

    def _add(self, entries: list[tuple[float, bytes]]) -> None:
        entries.sort()
        queues: dict[bytes, str | None] = {}
        for start in range(0, len(entries), CHUNK):
            tags = [tag for _score, tag in entries[start:start + CHUNK]]
            for tag, raw in zip(tags, self.client.hmget(UNACKED, tags), strict=True):
                queues[tag] = _queue(raw)
        for score, tag in entries:
            queue = queues.get(tag)
            if queue is None:
                continue  # acked between the two reads
            self.queue_of[tag] = queue
            self.counts[queue] += 1
            if not self.chunks or len(self.chunks[-1]) >= CHUNK:
                self.chunks.append([])
            self.chunks[-1].append((score, tag))

    def _resync(self) -> None:
        self.queue_of.clear()
        self.chunks = []
        self.counts = Counter()
        everything = self.client.zrange(UNACKED_INDEX, 0, -1, withscores=True)
        self._add([(score, tag) for tag, score in everything])
        self.synced_at = time.monotonic()
        self.suspect = False


def _queue(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return str(json.loads(raw)[2])
    except (ValueError, TypeError, IndexError):
        return ""
