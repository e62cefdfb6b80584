"""The measurements: memory, creation time, trigger throughput, legality, scaling.

Timing uses :func:`time.perf_counter_ns` over chunks of a run; each measurement is
repeated, contenders alternating inside each repeat so that they see the same
conditions, and each chunk keeps its fastest repeat (the least disturbed by the
rest of the machine). As ``timeit`` does, the cyclic garbage collector is paused
while a timed loop runs, except in the rows that say "gc on".

Memory uses :mod:`tracemalloc`: bytes still allocated after creating ``n``
sessions (held in a list allocated beforehand), divided by ``n``. Inputs
(identifier strings, instrument and user names) are built before tracing starts,
so only what each library allocates per session is counted.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import product
from typing import Any

from nexuslims_lifecycle import RecordStatus, legality
from nexuslims_lifecycle.rules import EVENTS, LIFECYCLE
from peers import Contender

PATH: tuple[str, ...] = ("end", "fail", "retry", "complete")
"""The benchmarked path: end -> fail -> retry -> complete."""

CREATION_CHUNK = 1_000
"""Sessions created per timed chunk."""

PATH_CHUNK = 100
"""Sessions taken through ``PATH`` per timed chunk."""

INSTRUMENT = "FEI-Titan-TEM"
USER = "jdoe"


def identifiers(n: int, start: int = 0) -> list[str]:
    """Return ``n`` distinct NEMO-style session identifiers."""
    return [f"https://nemo.example.org/api/usage_events/?id={i}" for i in range(start, start + n)]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (as ``timeit`` does) inside the block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def bytes_per_session(contender: Contender, n: int) -> float:
    """Return the bytes retained per session after creating ``n`` of them."""
    make, _ = contender.world()
    ids = identifiers(n)
    out: list[Any] = [None] * n
    make("warm-up", INSTRUMENT, USER)  # first-call caches are not a per-session cost
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index, identifier in enumerate(ids):
            out[index] = make(identifier, INSTRUMENT, USER)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del out
    gc.collect()
    return (after - before) / n


@dataclass(frozen=True)
class Sample:
    """One timed run: the nanoseconds each chunk took, and how many operations in all."""

    chunks: list[int]
    operations: int


def _timed_chunks(run: Callable[[int, int], object], n: int, chunk: int) -> list[int]:
    """Time ``run(lo, hi)`` over consecutive chunks of ``range(n)``."""
    clock = time.perf_counter_ns
    times = []
    for lo in range(0, n, chunk):
        start = clock()
        run(lo, min(lo + chunk, n))
        times.append(clock() - start)
    return times


def creation(contender: Contender, n: int, *, gc_on: bool = False) -> Sample:
    """Time creating ``n`` sessions in a fresh world, in chunks of ``CREATION_CHUNK``.

    The garbage collector is paused unless ``gc_on``: with it on, CPython's full
    collections walk every live object, a cost that grows with the heap for any
    GC-tracked object (the floor too), not with the library.
    """
    make, _ = contender.world()
    ids = identifiers(n)
    out: list[Any] = [None] * n
    make("warm-up", INSTRUMENT, USER)

    def run(lo: int, hi: int) -> None:
        for index in range(lo, hi):
            out[index] = make(ids[index], INSTRUMENT, USER)

    gc.collect()
    with nullcontext() if gc_on else _gc_paused():
        chunks = _timed_chunks(run, n, CREATION_CHUNK)
    out.clear()
    gc.collect()
    return Sample(chunks, n)


def path(contender: Contender, n: int) -> Sample:
    """Time ``PATH`` on ``n`` fresh sessions, in chunks of ``PATH_CHUNK`` sessions."""
    make, fire = contender.world()
    sessions = [make(identifier, INSTRUMENT, USER) for identifier in identifiers(n)]
    warm_up = make("warm-up", INSTRUMENT, USER)
    for event in PATH:  # every trigger runs once before the timing
        fire(warm_up, event)

    def run(lo: int, hi: int) -> None:
        for session in sessions[lo:hi]:
            for event in PATH:
                fire(session, event)

    with _gc_paused():
        chunks = _timed_chunks(run, n, PATH_CHUNK)
    _assert_completed(sessions[-1])
    sessions.clear()
    gc.collect()
    return Sample(chunks, n * len(PATH))


def _assert_completed(session: Any) -> None:
    """Check that the path really ran (the status is COMPLETED)."""
    status = getattr(session, "status", None)
    if status is None:
        status = session.model.status
    if status is not RecordStatus.COMPLETED:
        msg = f"path did not complete: {session!r} is in {status!r}"
        raise RuntimeError(msg)


def _fastest(known: list[int] | None, chunks: list[int]) -> list[int]:
    """Keep, chunk by chunk, the faster of two runs of the same work."""
    if known is None:
        return chunks
    return [min(a, b) for a, b in zip(known, chunks, strict=True)]


def best_of(
    measure: Callable[[Contender, int], Sample],
    contenders: Sequence[Contender],
    n: int,
    repeats: int,
) -> dict[str, float]:
    """Return ns per operation for each contender: the best of ``repeats``, chunk by chunk.

    Contenders alternate inside each repeat. Each chunk keeps its fastest repeat, so
    a burst of load from another process spoils one chunk of one repeat, not the run.
    """
    fastest: dict[str, list[int]] = {}
    operations: dict[str, int] = {}
    for _ in range(repeats):
        for contender in contenders:
            sample = measure(contender, n)
            fastest[contender.key] = _fastest(fastest.get(contender.key), sample.chunks)
            operations[contender.key] = sample.operations
    return {key: sum(chunks) / operations[key] for key, chunks in fastest.items()}


# --- legality ------------------------------------------------------------------------


@dataclass(frozen=True)
class LegalityResult:
    """Nanoseconds per query for each loop shape."""

    bare_dict: float
    wrapped_dict: float
    next_status: float
    can: float
    allowed_events: float


def _legality_table() -> dict[tuple[RecordStatus, str], RecordStatus]:
    """The (status, event) -> destination dict the baseline looks up, from the rules."""
    return {(source, rule.event): rule.dest for rule in LIFECYCLE.rules for source in rule.sources}


LEGALITY_BATCH = 1_024
"""Queries per timed batch of a legality loop."""


def legality_ns(batches: int, repeats: int) -> LegalityResult:
    """Return ns per query: the public legality queries against a dict lookup.

    Each loop walks a batch of ``LEGALITY_BATCH`` inputs: all 64 (status, event)
    pairs over and over -- for ``next_status`` only the legal ones (an illegal one
    raises), for ``can`` the 64 (status, status) pairs. The bare loop evaluates
    ``(status, event) in table`` inline; the wrapped loop calls a one-line function
    that does the same, so it has the call shape of a public query. Every batch is
    the same work, so the fastest of ``batches * repeats`` batches is kept.
    """
    table = _legality_table()
    everything = [(status, event) for status in RecordStatus for event in EVENTS]
    legal = [pair for pair in everything if pair in table]
    edges = [(source, dest) for source in RecordStatus for dest in RecordStatus]

    def batch(inputs: list[tuple[RecordStatus, Any]]) -> list[tuple[RecordStatus, Any]]:
        return (inputs * (LEGALITY_BATCH // len(inputs) + 1))[:LEGALITY_BATCH]

    pairs, legal, edges = batch(everything), batch(legal), batch(edges)
    can, next_status, allowed = legality.can, legality.next_status, legality.allowed_events

    def lookup(status: RecordStatus, event: str) -> bool:
        return (status, event) in table

    def bare() -> None:
        for status, event in pairs:
            (status, event) in table  # noqa: B015 - the expression is what is measured

    def wrapped() -> None:
        for status, event in pairs:
            lookup(status, event)

    def via_next_status() -> None:
        for status, event in legal:
            next_status(status, event)

    def via_can() -> None:
        for source, dest in edges:
            can(source, dest)

    def via_allowed() -> None:
        for status, event in pairs:
            event in allowed(status)  # noqa: B015 - the expression is what is measured

    loops = {
        "bare_dict": bare,
        "wrapped_dict": wrapped,
        "next_status": via_next_status,
        "can": via_can,
        "allowed_events": via_allowed,
    }
    fastest: dict[str, int] = {}
    clock = time.perf_counter_ns
    with _gc_paused():
        for _ in range(repeats):
            for name, loop in loops.items():
                for _ in range(batches):
                    start = clock()
                    loop()
                    elapsed = clock() - start
                    fastest[name] = min(elapsed, fastest.get(name, elapsed))
    return LegalityResult(**{name: ns / LEGALITY_BATCH for name, ns in fastest.items()})


# --- scaling -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalePoint:
    """The per-session cost of one contender at one size."""

    n: int
    bytes_per_session: float
    creation_ns: float
    creation_ns_gc_on: float


def scaling(
    contenders: Sequence[Contender], sizes: Sequence[int], repeats: int
) -> dict[str, list[ScalePoint]]:
    """Return bytes and creation time per session at each size, for each contender.

    Creation time is measured ``repeats`` times at the largest size and more often
    at smaller ones (up to 50 times), chunk by chunk as in :func:`best_of`. The
    repeats of every size, contender and GC setting are interleaved over the whole
    measurement, so a spell of load on the machine cannot cover all of one size's.
    """
    largest = max(sizes)
    runs = {n: max(repeats, min(50, largest // n)) for n in sizes}
    memory = {(each.key, n): bytes_per_session(each, n) for n in sizes for each in contenders}
    fastest: dict[tuple[str, int, bool], list[int]] = {}
    for repeat in range(max(runs.values())):
        for n in sizes:
            if repeat >= runs[n]:
                continue
            for contender, gc_on in product(contenders, (False, True)):
                key = (contender.key, n, gc_on)
                chunks = creation(contender, n, gc_on=gc_on).chunks
                fastest[key] = _fastest(fastest.get(key), chunks)
    return {
        each.key: [
            ScalePoint(
                n,
                memory[each.key, n],
                sum(fastest[each.key, n, False]) / n,
                sum(fastest[each.key, n, True]) / n,
            )
            for n in sizes
        ]
        for each in contenders
    }
