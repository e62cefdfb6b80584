"""Every row of a store's tables, to prove that a refused operation wrote nothing."""

from __future__ import annotations

import sqlalchemy as sa


def dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Return the sorted rows of each table of the database at ``url``."""
    from nexuslims_lifecycle.store._engine import create_engine, to_url

    engine = create_engine(to_url(url))
    tables: dict[str, list[tuple[object, ...]]] = {}
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            result = conn.execute(sa.text(f'SELECT * FROM "{name}"'))
            tables[name] = sorted((tuple(row) for row in result), key=repr)
    engine.dispose()
    return tables
