"""The benchmark's ``live`` worker, run in-process on a SQLite file."""

from __future__ import annotations

import queue
from typing import Any

import pytest
from _workers import PATHS, SHARED_PATH, live

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.store import SessionLogStore


class _Gate:
    """A barrier for one process: nothing to wait for."""

    def wait(self) -> None:
        return None


def _run(url: str, own: list[str], shared: list[str], moves: int) -> dict[str, Any]:
    results: queue.Queue[dict[str, Any]] = queue.Queue()
    live(url=url, name="w", own=own, shared=shared, moves=moves, barrier=_Gate(),
         results=results, share_every=4)  # fmt: skip
    return results.get_nowait()


@pytest.fixture
def seeded(sqlite_url: str) -> tuple[str, list[str], list[str]]:
    own = [f"own{n}" for n in range(12)]
    shared = [f"shared{n}" for n in range(3)]
    with SessionLogStore(sqlite_url) as store:
        store.init()
        for sid in own + shared:
            store.start(sid, instrument="I")
    return sqlite_url, own, shared


def test_live_moves_own_sessions_along_their_paths_and_shared_ones_to_completed(seeded):
    url, own, shared = seeded
    report = _run(url, own, shared, moves=24)  # 6 shared attempts, 18 own moves
    assert report["name"] == "w"
    assert (report["commits"], report["conflicts"]) == (24, 0)
    assert report["seconds"] > 0
    with SessionLogStore(url) as store:
        # 18 own moves: the first eight paths take 2+2+2+2+2+2+4+3 = 19, so the
        # eighth session is one move short of its end.
        for n, sid in enumerate(own[:7]):
            assert [e.event for e in store.history(sid)][1:] == list(PATHS[n])
        assert [e.event for e in store.history(own[7])][1:] == list(PATHS[7][:2])
        assert store.status(own[8]) is RecordStatus.WAITING_FOR_END
        # 6 shared attempts: two sessions taken all the way (three moves each).
        done = RecordStatus.COMPLETED
        assert [store.status(sid) for sid in shared] == [done, done, RecordStatus.WAITING_FOR_END]
        assert [e.event for e in store.history(shared[0])][1:] == list(SHARED_PATH.values())


def test_live_says_when_it_runs_out_of_sessions(seeded):
    url, own, shared = seeded
    with pytest.raises(IndexError):
        _run(url, own[:1], shared, moves=10)
