"""PL/pgSQL triggers that make a rare race or failure happen on demand (PostgreSQL)."""

from __future__ import annotations

from nexuslims_lifecycle.store import SessionLogStore


def install_trigger(store: SessionLogStore, table: str, when: str, body: str) -> None:
    """Install the PL/pgSQL trigger ``sneaky``, run ``when`` (e.g. 'BEFORE UPDATE') per row."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE FUNCTION sneaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER sneaky {when} ON {table} FOR EACH ROW EXECUTE FUNCTION sneaky()"
        )
