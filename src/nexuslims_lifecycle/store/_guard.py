"""The lifecycle guard: triggers, generated from the rules, that check and record every move.

Installed in the database itself, the guard holds whoever writes ``session_log``
(this store, NexusLIMS's own code, an operator at a ``sqlite3`` or ``psql`` prompt):

- a change of a row's ``record_status`` that is not a lifecycle move is refused (the
  statement fails, nothing of it is written), with a message naming the from and to
  statuses and the moves the lifecycle allows from there (and, on PostgreSQL, the
  session);
- a legal change is applied to the whole session: the session's other rows still in
  the old status (and, out of TO_BE_BUILT, its build rows in progress) follow, so
  after any statement a session's rows agree;
- each move of a session appends one ``status_history`` entry, its event named from
  the (from, to) pair (each pair has exactly one event: :func:`~..rules.validate`);
- a row inserted for a new session starts it (``start``; a row inserted TO_BE_BUILT,
  as NexusLIMS's NEMO harvester writes it, also records ``end``); a row inserted into
  an existing session must carry the session's status, except a build row in progress
  (RECORD_GENERATION, WAITING_FOR_END) into a TO_BE_BUILT session; deletes and
  changes of other columns pass.

On SQLite the guard is two triggers (their messages are literals: SQLite 3.40's
``RAISE`` takes no expression, so they do not name the session), on PostgreSQL two
PL/pgSQL trigger functions. Who made a move and when is taken from the writer's
context when this store writes (:data:`CONTEXT`, ``set_config`` on PostgreSQL),
else it is now in the database's local offset and, on PostgreSQL, ``current_user``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import sqlalchemy as sa

from nexuslims_lifecycle._timestamps import read_stored
from nexuslims_lifecycle.enums import EventType, RecordStatus
from nexuslims_lifecycle.rules import LIFECYCLE, START_EVENT, Lifecycle
from nexuslims_lifecycle.store._schema import METADATA, STATUS_HISTORY

__all__ = [
    "CONTEXT",
    "GUARD_TABLE",
    "GuardStatus",
    "guard_status",
    "install",
    "postgres_ddl",
    "remove",
    "sqlite_ddl",
    "version",
]

GUARD_TABLE: Final = "lifecycle_guard"
"""The table recording which guard is installed: ``version``, ``installed_at``."""

CONTEXT: Final = "lifecycle_guard_context"
"""SQLite: the one-row table through which this store tells the guard who moves and when."""

_UPDATE: Final = "lifecycle_guard_update"
_INSERT: Final = "lifecycle_guard_insert"
_UPDATE_BUILD: Final = "lifecycle_guard_build_row"
_TBB: Final = RecordStatus.TO_BE_BUILT.value
_WFE: Final = RecordStatus.WAITING_FOR_END.value
_RG: Final = EventType.RECORD_GENERATION.value
_PG_AT: Final = "nexuslims_lifecycle.at"
_PG_ACTOR: Final = "nexuslims_lifecycle.actor"
_PG_ROWS: Final = "nexuslims_lifecycle.rows"


def _moves(lifecycle: Lifecycle) -> dict[tuple[str, str], str]:
    """Return every legal (from, to) pair of status values and its one event."""
    return {
        (source.value, rule.dest.value): rule.event
        for rule in lifecycle.rules
        for source in rule.sources
    }


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _legal_from(lifecycle: Lifecycle, source: str) -> str:
    """Return the moves allowed from ``source`` as text, e.g. ``retry -> TO_BE_BUILT``."""
    found = [
        f"{event} -> {dst}" for (src, dst), event in _moves(lifecycle).items() if src == source
    ]
    return ", ".join(found) or "none (an operator must decide)"


def _refusal(lifecycle: Lifecycle, source: str, dest: str) -> str:
    """Return the message of a refused change (without the session)."""
    return (
        f"lifecycle guard: record_status {source} -> {dest} is not a lifecycle move; "
        f"from {source} the lifecycle allows: {_legal_from(lifecycle, source)}"
    )


def _event_case(lifecycle: Lifecycle, pair: str) -> str:
    """Return SQL giving the event of the pair expression ``pair`` ('FROM>TO'), else NULL."""
    whens = " ".join(
        f"WHEN {_quote(f'{src}>{dst}')} THEN {_quote(event)}"
        for (src, dst), event in _moves(lifecycle).items()
    )
    return f"CASE {pair} {whens} ELSE NULL END"


_BUILD_ROW_OLD: Final = f"(OLD.event_type = '{_RG}' AND OLD.record_status = '{_WFE}')"
_NOT_BUILD_ROW: Final = f"NOT (event_type = '{_RG}' AND record_status = '{_WFE}')"


# --------------------------------------------------------------------------- SQLite

_SQLITE_NOW: Final = (
    "(strftime('%Y-%m-%dT%H:%M:%f', 'now', 'localtime') || "
    "(SELECT CASE WHEN m < 0 THEN '-' ELSE '+' END || printf('%02d:%02d', abs(m) / 60, "
    "abs(m) % 60) FROM (SELECT CAST(round((julianday('now', 'localtime') - julianday('now'))"
    " * 1440) AS INTEGER) AS m)))"
)
"""Now as ISO 8601 in the local offset (the offset of the SQLite process's TZ)."""


def _sqlite_history(source: str, dest: str, event: str) -> str:
    """Return the INSERT of one history entry (session NEW's), numbered after the last.

    The caller appends ``AND <condition>`` to its WHERE clause.
    """
    context = f"(SELECT {{}} FROM {CONTEXT} WHERE id = 1)"
    return (
        "INSERT INTO status_history (session_identifier, seq, from_status, to_status, event, "
        "actor, at) SELECT NEW.session_identifier, (SELECT coalesce(max(seq), 0) + 1 FROM "
        "status_history WHERE session_identifier = NEW.session_identifier), "
        f"{source}, {dest}, {event}, {context.format('actor')}, "
        f"coalesce({context.format('at')}, {_SQLITE_NOW}) WHERE 1"
    )


def _sqlite_update(lifecycle: Lifecycle, name: str, when: str, src: str) -> str:
    """Return one UPDATE trigger moving the session from ``src`` (a constant for the row)."""
    pair = f"({src} || '>' || NEW.record_status)"
    statuses = [status.value for status in RecordStatus]
    refusals = " ".join(
        f"WHEN {_quote(f'{a}>{b}')} THEN RAISE(ABORT, {_quote(_refusal(lifecycle, a, b))})"
        for a in statuses
        for b in statuses
        if a != b and (a, b) not in _moves(lifecycle)
    )
    last = (
        "(SELECT to_status FROM status_history WHERE session_identifier = "
        "NEW.session_identifier ORDER BY seq DESC LIMIT 1)"
    )
    return f"""CREATE TRIGGER {name} AFTER UPDATE OF record_status ON session_log
FOR EACH ROW WHEN {when}
BEGIN
  SELECT CASE WHEN {_event_case(lifecycle, pair)} IS NOT NULL THEN NULL
    ELSE (CASE {pair} {refusals} ELSE RAISE(ABORT, 'lifecycle guard: unknown record_status') END)
  END;
  {_sqlite_history(src, "NEW.record_status", _event_case(lifecycle, pair))}
    AND {last} IS NOT NEW.record_status;
  UPDATE session_log SET record_status = NEW.record_status
    WHERE session_identifier = NEW.session_identifier AND id_session_log <> NEW.id_session_log
    AND (record_status = {src} OR ({src} = '{_TBB}' AND event_type = '{_RG}'
         AND record_status = '{_WFE}'));
END"""


def sqlite_ddl(lifecycle: Lifecycle = LIFECYCLE) -> list[str]:
    """Return the statements that create the guard's triggers on SQLite.

    Parameters
    ----------
    lifecycle
        The lifecycle to enforce.

    Returns
    -------
    list of str
        ``CREATE TRIGGER`` statements (the tables come from :func:`install`).
    """
    others = (
        "FROM session_log WHERE session_identifier = NEW.session_identifier "
        "AND id_session_log <> NEW.id_session_log"
    )
    other_tbb = f"EXISTS (SELECT 1 {others} AND record_status = '{_TBB}')"
    joining = (
        f"(EXISTS (SELECT 1 {others}) AND NOT EXISTS (SELECT 1 {others} AND {_NOT_BUILD_ROW} "
        "AND record_status <> NEW.record_status))"
    )
    changed = "OLD.record_status IS NOT NEW.record_status"
    # A row's own change moves its session from the row's old status; a build row in
    # progress leaving WAITING_FOR_END moves a TO_BE_BUILT session from TO_BE_BUILT,
    # and joins rows that already hold its new status (no move).
    row = _sqlite_update(
        lifecycle,
        _UPDATE,
        f"{changed} AND NOT ({_BUILD_ROW_OLD} AND ({other_tbb} OR {joining}))",
        "OLD.record_status",
    )
    build = _sqlite_update(
        lifecycle,
        _UPDATE_BUILD,
        f"{changed} AND {_BUILD_ROW_OLD} AND {other_tbb} AND NEW.record_status <> '{_TBB}'",
        f"'{_TBB}'",
    )
    update = [row, build]
    initial = lifecycle.initial.value
    end_event = _moves(lifecycle).get((initial, _TBB))
    others = (
        "FROM session_log WHERE session_identifier = NEW.session_identifier "
        "AND id_session_log <> NEW.id_session_log"
    )
    new_session = f"NOT EXISTS (SELECT 1 {others})"
    settled = f"SELECT record_status {others} AND {_NOT_BUILD_ROW}"
    starts = [initial] + ([_TBB] if end_event else [])
    insert = f"""CREATE TRIGGER {_INSERT} AFTER INSERT ON session_log FOR EACH ROW
BEGIN
  SELECT CASE
    WHEN {new_session} THEN CASE WHEN NEW.record_status IN ({", ".join(map(_quote, starts))})
      THEN NULL ELSE RAISE(ABORT, {_quote(_new_refusal(starts))}) END
    WHEN NEW.event_type = '{_RG}' AND NEW.record_status = '{_WFE}'
      AND EXISTS ({settled} AND record_status = '{_TBB}') THEN NULL
    WHEN NOT EXISTS ({settled} AND record_status <> NEW.record_status) THEN NULL
    ELSE RAISE(ABORT, {_quote(_JOIN_REFUSAL)})
  END;
  {_sqlite_history("NULL", _quote(initial), _quote(START_EVENT))} AND {new_session};
  {_sqlite_history(_quote(initial), _quote(_TBB), _quote(end_event or "end"))}
    AND {new_session} AND NEW.record_status = '{_TBB}';
END"""
    return [*update, insert]


def _new_refusal(starts: list[str]) -> str:
    return (
        "lifecycle guard: a new session's first row must be "
        f"{' or '.join(starts)} (NexusLIMS's harvester writes TO_BE_BUILT)"
    )


_JOIN_REFUSAL: Final = (
    "lifecycle guard: a row inserted into an existing session must carry the session's "
    f"record_status (or be its build row in progress: {_RG}, {_WFE}, into a {_TBB} session)"
)


# ----------------------------------------------------------------------- PostgreSQL


def postgres_ddl(lifecycle: Lifecycle = LIFECYCLE) -> list[str]:
    """Return the statements that create the guard's functions and triggers on PostgreSQL.

    Parameters
    ----------
    lifecycle
        The lifecycle to enforce.

    Returns
    -------
    list of str
        ``CREATE OR REPLACE FUNCTION`` and ``CREATE TRIGGER`` statements.
    """
    moves = _moves(lifecycle)
    legal = " ".join(
        f"WHEN {_quote(src)} THEN {_quote(_legal_from(lifecycle, src))}"
        for src in (status.value for status in RecordStatus)
    )
    initial = lifecycle.initial.value
    end_event = moves.get((initial, _TBB))
    starts = [initial] + ([_TBB] if end_event else [])
    context = f"""
  ctx_at text := nullif(current_setting('{_PG_AT}', true), '');
  ctx_rows text := nullif(current_setting('{_PG_ROWS}', true), '');
  who text;
  stamp text;"""
    who = f"""
  IF ctx_at IS NULL THEN
    who := current_user; stamp := to_json(now()) #>> '{{}}';
  ELSE
    who := nullif(current_setting('{_PG_ACTOR}', true), ''); stamp := ctx_at;
  END IF;"""
    history = """
    INSERT INTO status_history (session_identifier, seq, from_status, to_status, event,
      actor, at)
    SELECT NEW.session_identifier, coalesce(max(seq), 0) + 1, {src}, {dst}, {event}, who,
      stamp FROM status_history WHERE session_identifier = NEW.session_identifier;"""
    changed = f"""CREATE OR REPLACE FUNCTION {_UPDATE}() RETURNS trigger
LANGUAGE plpgsql AS $guard$
DECLARE
  src text := OLD.record_status;
  dst text := NEW.record_status;
  ev text;
  last text;{context}
BEGIN
  IF pg_trigger_depth() > 1 THEN RETURN NULL; END IF;
  IF OLD.event_type = '{_RG}' AND OLD.record_status = '{_WFE}' THEN
    IF EXISTS (SELECT 1 FROM session_log WHERE session_identifier = NEW.session_identifier
               AND id_session_log <> NEW.id_session_log AND record_status = '{_TBB}') THEN
      src := '{_TBB}';
    ELSIF EXISTS (SELECT 1 FROM session_log WHERE session_identifier = NEW.session_identifier
                  AND id_session_log <> NEW.id_session_log)
      AND NOT EXISTS (SELECT 1 FROM session_log WHERE session_identifier = NEW.session_identifier
                  AND id_session_log <> NEW.id_session_log AND {_NOT_BUILD_ROW}
                  AND record_status <> dst) THEN
      src := dst;
    END IF;
  END IF;
  IF src = dst THEN RETURN NULL; END IF;
  ev := {_event_case(lifecycle, "src || '>' || dst")};
  IF ev IS NULL THEN
    RAISE EXCEPTION 'lifecycle guard: session % record_status % -> % is not a lifecycle move',
      quote_literal(NEW.session_identifier), src, dst
      USING ERRCODE = 'check_violation',
      HINT = 'from ' || src || ' the lifecycle allows: ' || (CASE src {legal} ELSE 'nothing' END);
  END IF;
  IF ctx_rows IS NOT NULL AND (SELECT count(*) FROM session_log
      WHERE session_identifier = NEW.session_identifier) <> ctx_rows::bigint THEN
    RAISE EXCEPTION 'lifecycle guard: session % changed since it was read',
      quote_literal(NEW.session_identifier) USING ERRCODE = 'serialization_failure';
  END IF;{who}
  SELECT to_status INTO last FROM status_history
    WHERE session_identifier = NEW.session_identifier ORDER BY seq DESC LIMIT 1;
  IF last IS DISTINCT FROM dst THEN{history.format(src="src", dst="dst", event="ev")}
  END IF;
  UPDATE session_log SET record_status = dst
    WHERE session_identifier = NEW.session_identifier AND id_session_log <> NEW.id_session_log
    AND (record_status = src OR (src = '{_TBB}' AND event_type = '{_RG}'
         AND record_status = '{_WFE}'));
  RETURN NULL;
END
$guard$"""
    start_entry = history.format(src="NULL", dst=_quote(initial), event=_quote(START_EVENT))
    end_entry = history.format(
        src=_quote(initial), dst=_quote(_TBB), event=_quote(end_event or "end")
    )
    inserted = f"""CREATE OR REPLACE FUNCTION {_INSERT}() RETURNS trigger
LANGUAGE plpgsql AS $guard$
DECLARE{context}
BEGIN
  IF pg_trigger_depth() > 1 THEN RETURN NULL; END IF;
  IF NOT EXISTS (SELECT 1 FROM session_log WHERE session_identifier = NEW.session_identifier
                 AND id_session_log <> NEW.id_session_log) THEN
    IF NEW.record_status NOT IN ({", ".join(map(_quote, starts))}) THEN
      RAISE EXCEPTION 'lifecycle guard: session % cannot begin in %: %',
        quote_literal(NEW.session_identifier), NEW.record_status, {_quote(_new_refusal(starts))}
        USING ERRCODE = 'check_violation';
    END IF;{who}{start_entry}
    IF NEW.record_status = '{_TBB}' THEN{end_entry}
    END IF;
    RETURN NULL;
  END IF;
  IF NEW.event_type = '{_RG}' AND NEW.record_status = '{_WFE}' AND EXISTS (
      SELECT 1 FROM session_log WHERE session_identifier = NEW.session_identifier
      AND id_session_log <> NEW.id_session_log AND {_NOT_BUILD_ROW}
      AND record_status = '{_TBB}') THEN
    RETURN NULL;
  END IF;
  IF EXISTS (SELECT 1 FROM session_log WHERE session_identifier = NEW.session_identifier
      AND id_session_log <> NEW.id_session_log AND {_NOT_BUILD_ROW}
      AND record_status <> NEW.record_status) THEN
    RAISE EXCEPTION 'lifecycle guard: session % refused a % row in %: %',
      quote_literal(NEW.session_identifier), NEW.event_type, NEW.record_status,
      {_quote(_JOIN_REFUSAL)} USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$guard$"""
    return [
        changed,
        inserted,
        f"CREATE TRIGGER {_UPDATE} AFTER UPDATE OF record_status ON session_log FOR EACH ROW "
        f"WHEN (OLD.record_status IS DISTINCT FROM NEW.record_status) "
        f"EXECUTE FUNCTION {_UPDATE}()",
        f"CREATE TRIGGER {_INSERT} AFTER INSERT ON session_log FOR EACH ROW "
        f"EXECUTE FUNCTION {_INSERT}()",
    ]


def version(lifecycle: Lifecycle = LIFECYCLE) -> str:
    """Return the guard's version: a hash of the DDL generated for ``lifecycle``.

    It changes whenever the lifecycle table (or the guard's code) changes, so
    :func:`guard_status` can tell an outdated guard from the current one.
    """
    text = "\n".join([*sqlite_ddl(lifecycle), *postgres_ddl(lifecycle)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True)
class GuardStatus:
    """Whether a database holds the guard, and which.

    Parameters
    ----------
    state
        ``installed`` (this version's), ``outdated`` (another version's: install
        again to replace it), ``partial`` (some of its triggers are missing: install
        again) or ``absent``.
    version
        The installed guard's version, if any.
    installed_at
        When it was installed (timezone-aware), if it is and that time is readable.
    expected
        This version's guard version.
    """

    state: Literal["installed", "absent", "outdated", "partial"]
    version: str | None
    installed_at: datetime | None
    expected: str


_OBJECTS: Final = (_UPDATE, _INSERT)
_SQLITE_OBJECTS: Final = (_UPDATE, _UPDATE_BUILD, _INSERT)


def _objects(conn: sa.Connection) -> tuple[str, ...]:
    """Return the names of the guard's triggers on ``conn``'s backend."""
    return _OBJECTS if conn.dialect.name == "postgresql" else _SQLITE_OBJECTS


def _triggers(conn: sa.Connection) -> set[str]:
    """Return which of the guard's triggers exist on ``session_log``."""
    if conn.dialect.name == "postgresql":
        query = (
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgrelid = 'session_log'::regclass"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'session_log'"
    return {str(name) for (name,) in conn.exec_driver_sql(query)} & set(_objects(conn))


def guard_status(conn: sa.Connection) -> GuardStatus:
    """Return which guard ``conn``'s database holds (reads only)."""
    expected = version()
    inspector = sa.inspect(conn)
    if not inspector.has_table(GUARD_TABLE):
        return GuardStatus("absent", None, None, expected)
    row = conn.exec_driver_sql(f"SELECT version, installed_at FROM {GUARD_TABLE}").first()
    found = _triggers(conn) if inspector.has_table("session_log") else set()
    if row is None or not found:
        return GuardStatus("absent" if not found else "partial", None, None, expected)
    installed, at = str(row[0]), read_stored(row[1])
    if found != set(_objects(conn)):
        return GuardStatus("partial", installed, at, expected)
    return GuardStatus(
        "installed" if installed == expected else "outdated", installed, at, expected
    )


def _drop(conn: sa.Connection) -> None:
    """Drop whatever of the guard exists (inside the caller's transaction)."""
    postgres = conn.dialect.name == "postgresql"
    has_log = sa.inspect(conn).has_table("session_log")
    for name in _SQLITE_OBJECTS:
        if postgres:
            if has_log:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON session_log")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {GUARD_TABLE}")
    if not postgres:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {CONTEXT}")


def install(conn: sa.Connection, now: datetime) -> bool:
    """Install (or replace) the guard inside the caller's one transaction.

    Creates ``status_history`` and ``build_claim`` if they are missing. The caller
    checks that ``session_log`` exists. Returns False, changing nothing, when this
    version's guard is installed already.
    """
    if guard_status(conn).state == "installed":
        return False
    _drop(conn)
    STATUS_HISTORY.create(conn, checkfirst=True)
    METADATA.tables["build_claim"].create(conn, checkfirst=True)
    postgres = conn.dialect.name == "postgresql"
    conn.exec_driver_sql(
        f"CREATE TABLE {GUARD_TABLE} (version VARCHAR(64) NOT NULL, installed_at VARCHAR(64) "
        "NOT NULL)"
    )
    if not postgres:
        conn.exec_driver_sql(
            f"CREATE TABLE {CONTEXT} (id INTEGER PRIMARY KEY CHECK (id = 1), actor TEXT, at TEXT)"
        )
    for statement in postgres_ddl() if postgres else sqlite_ddl():
        # (psycopg reads % as a placeholder even with no parameters)
        conn.exec_driver_sql(statement.replace("%", "%%") if postgres else statement)
    conn.execute(
        sa.text(f"INSERT INTO {GUARD_TABLE} (version, installed_at) VALUES (:v, :at)"),
        {"v": version(), "at": now.isoformat()},
    )
    return True


def remove(conn: sa.Connection) -> bool:
    """Remove the guard inside the caller's transaction; return whether there was one."""
    had = guard_status(conn).state != "absent"
    _drop(conn)
    return had
