"""The build queue: claims, leases, takeovers, and outcomes only from the claim's holder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from _consistency import problems
from _snapshot import dump

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.errors import InvalidArgument, TransitionConflict
from nexuslims_lifecycle.store import SessionLogStore, retry_on_conflict

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LEASE = timedelta(minutes=10)


@pytest.fixture
def store(db_url: str) -> Iterator[SessionLogStore]:
    with SessionLogStore(db_url) as opened:
        opened.init()
        for number in range(3):
            opened.start(f"s{number}", instrument="I", at=T0)
            opened.advance(f"s{number}", "end", at=T0 + timedelta(minutes=number))
        yield opened


def _kinds(store: SessionLogStore, sid: str) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        query = sa.text(
            "SELECT event_type, record_status FROM session_log "
            "WHERE session_identifier = :sid ORDER BY id_session_log"
        )
        return [tuple(row) for row in conn.execute(query, {"sid": sid})]


def test_claims_hand_out_each_waiting_session_once_oldest_first(store):
    claims = [store.claim_next(f"w{n}", lease=LEASE, now=T0) for n in range(4)]
    assert [c.session_identifier if c else None for c in claims] == ["s0", "s1", "s2", None]
    assert claims[0].worker == "w0"
    assert claims[0].claimed_at.isoformat() == "2026-03-02T09:30:00+00:00"
    assert claims[0].expires_at.isoformat() == "2026-03-02T09:40:00+00:00"


def test_a_claim_writes_the_build_row_nexuslims_writes_so_the_session_is_being_built(store, db_url):
    store.claim_next("w", lease=LEASE)
    assert _kinds(store, "s0")[-1] == ("RECORD_GENERATION", "WAITING_FOR_END")
    assert store.status("s0") is RecordStatus.TO_BE_BUILT
    (info,) = [info for info in store.sessions() if info.session_identifier == "s0"]
    assert info.being_built is True
    assert problems(db_url) == []


def test_the_holders_outcome_reuses_the_claims_record_generation_row(store, db_url):
    claim = store.claim_next("w", lease=LEASE)
    assert store.advance(claim.session_identifier, "fail", actor="w") is RecordStatus.ERROR
    assert _kinds(store, "s0") == [
        ("START", "ERROR"),
        ("END", "ERROR"),
        ("RECORD_GENERATION", "ERROR"),
    ]
    assert "build_claim" in dump(db_url)
    assert dump(db_url)["build_claim"] == []


def test_an_outcome_from_a_worker_without_the_claim_is_a_conflict_writing_nothing(store, db_url):
    store.claim_next("w1", lease=LEASE)
    before = dump(db_url)
    with pytest.raises(TransitionConflict, match="claimed by worker 'w1'") as info:
        store.advance("s0", "complete", actor="w2")
    assert (info.value.holder, info.value.current) == ("w1", "TO_BE_BUILT")
    with pytest.raises(TransitionConflict, match="claimed by worker 'w1'"):
        store.advance("s0", "complete")
    assert dump(db_url) == before


def test_an_expired_claim_is_taken_over_and_the_old_holder_is_refused(store, db_url):
    first = store.claim_next("crashed", lease=LEASE, now=T0)
    later = T0 + LEASE + timedelta(seconds=1)
    second = store.claim_next("rescuer", lease=LEASE, now=later)
    assert (second.session_identifier, second.taken_over_from) == ("s0", "crashed")
    assert first.session_identifier == "s0"
    with pytest.raises(TransitionConflict, match="claimed by worker 'rescuer'"):
        store.advance("s0", "complete", actor="crashed", now=later)
    assert store.advance("s0", "complete", actor="rescuer", now=later) is RecordStatus.COMPLETED
    assert [k for k, _ in _kinds(store, "s0")].count("RECORD_GENERATION") == 2
    assert problems(db_url) == []


def test_a_live_claim_is_not_handed_out_again(store):
    store.claim_next("w1", lease=LEASE, now=T0)
    almost = T0 + LEASE - timedelta(seconds=1)
    assert store.claim_next("w2", lease=LEASE, now=almost).session_identifier == "s1"


def test_an_expired_claim_nobody_took_over_still_lets_its_holder_report(store):
    store.claim_next("slow", lease=LEASE, now=T0)
    late = T0 + 3 * LEASE
    assert store.advance("s0", "complete", actor="slow", now=late) is RecordStatus.COMPLETED


def test_a_retried_session_can_be_claimed_again(store):
    store.claim_next("w", lease=LEASE, now=T0)
    store.advance("s0", "fail", actor="w", now=T0)
    store.advance("s0", "retry", actor="operator", now=T0)
    picked = [store.claim_next("w", lease=LEASE, now=T0) for _ in range(3)]
    assert sorted(c.session_identifier for c in picked) == ["s0", "s1", "s2"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"worker": "", "lease": 5}, "invalid worker ''"),
        ({"worker": "w", "lease": 0}, "invalid lease 0: expected a timedelta or a number"),
        ({"worker": "w", "lease": "1h"}, "invalid lease '1h'"),
        ({"worker": "w", "lease": True}, "invalid lease True"),
    ],
)
def test_bad_claim_arguments_are_refused_and_write_nothing(store, db_url, kwargs, message):
    before = dump(db_url)
    with pytest.raises(InvalidArgument, match=message):
        store.claim_next(**kwargs)
    assert dump(db_url) == before


def test_retry_on_conflict_decides_again_after_a_conflict(store):
    store.advance("s0", "fail")
    seen = []

    def step() -> RecordStatus:
        status = store.status("s0")
        seen.append(status)
        if len(seen) == 1:
            store.advance("s0", "retry", actor="someone else")  # the race we lose
        return store.advance(
            "s0", "complete" if status is RecordStatus.TO_BE_BUILT else "retry", expected=status
        )

    assert retry_on_conflict(step, backoff=0) is RecordStatus.COMPLETED
    assert seen == [RecordStatus.ERROR, RecordStatus.TO_BE_BUILT]


def test_retry_on_conflict_gives_up_with_the_last_conflict(store, db_url):
    before = dump(db_url)
    calls = []

    def step() -> RecordStatus:
        calls.append(1)
        return store.advance("s0", "fail", expected="ERROR")

    with pytest.raises(TransitionConflict, match="expected ERROR, but another writer moved it"):
        retry_on_conflict(step, attempts=3, backoff=0)
    assert len(calls) == 3
    assert dump(db_url) == before


@pytest.mark.parametrize("attempts", [0, -1, 1.5, True])
def test_retry_on_conflict_refuses_a_bad_number_of_attempts(attempts):
    with pytest.raises(InvalidArgument, match=f"invalid attempts {attempts!r}"):
        retry_on_conflict(lambda: None, attempts=attempts)


def test_a_session_whose_rows_disagree_is_passed_over_by_the_queue(store, db_url):
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE session_log SET record_status = 'ERROR' "
                "WHERE session_identifier = 's0' AND event_type = 'END'"
            )
        )
    before = dump(db_url)
    claim = store.claim_next("w", lease=LEASE)
    assert claim.session_identifier == "s1"
    after = dump(db_url)
    assert [row for row in after["session_log"] if row[1] == "s0"] == [
        row for row in before["session_log"] if row[1] == "s0"
    ]
