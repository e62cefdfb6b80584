"""A NexusLIMS deployment in a temporary directory, driven step by step from a test.

Each step runs ``nexuslims_driver.py`` with the NexusLIMS virtual environment's
python, so NexusLIMS's own code writes the database; the test then reads it with our
library. The NEMO world (users, usage events, the outcome planned for each session)
is a JSON file the driver reads on every step.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DRIVER = Path(__file__).with_name("nexuslims_driver.py")
NEMO_API = "https://nemo.example.org/api/"
INSTRUMENT = "FEI-Titan-TEM-635816"
LOCAL = ZoneInfo("America/Denver")  # NexusLIMS's "local" zone in the driver (TZ)
CRASH_EXIT = 70  # the driver's exit code for a build killed on purpose
WAIT = 120.0  # seconds to wait for a paused build to reach its pause


def sid(event_id: int) -> str:
    """Return the session identifier NexusLIMS gives a NEMO usage event."""
    return f"{NEMO_API}usage_events/?id={event_id}"


def ago(hours: float) -> datetime:
    """Return the local time ``hours`` ago (NEMO sends times with their offset)."""
    return datetime.now(LOCAL) - timedelta(hours=hours)


class Deployment:
    """A NexusLIMS work directory (database, data paths) and its NEMO world."""

    def __init__(self, python: Path, workdir: Path) -> None:
        self.python = python
        self.workdir = workdir
        self.db = workdir / "nexuslims.db"
        self.nemo: dict[str, Any] = {
            "users": [
                {"id": 1, "username": "ada", "first_name": "Ada", "last_name": "L"},
                {"id": 2, "username": "grace", "first_name": "Grace", "last_name": "H"},
            ],
            "usage_events": [],
            "plans": {},
        }
        workdir.mkdir(parents=True, exist_ok=True)
        self._save()

    # ---------------------------------------------------------------- the NEMO world

    def usage_event(
        self,
        event_id: int,
        start: datetime,
        end: datetime | None,
        *,
        user: int = 1,
        outcome: str = "built",
        pause: bool = False,
    ) -> str:
        """Add (or replace) a NEMO usage event and the build outcome planned for it."""
        self.nemo["usage_events"] = [e for e in self.nemo["usage_events"] if e["id"] != event_id]
        self.nemo["usage_events"].append(
            {
                "id": event_id,
                "start": start.isoformat(),
                "end": None if end is None else end.isoformat(),
                "user": user,
            }
        )
        self.plan(event_id, outcome, pause=pause)
        return sid(event_id)

    def plan(self, event_id: int, outcome: str, *, pause: bool = False) -> None:
        """Choose what the next build does with a session (see the driver)."""
        self.nemo["plans"][str(event_id)] = {"outcome": outcome, "pause": pause}
        self._save()

    def _save(self) -> None:
        (self.workdir / "nemo.json").write_text(json.dumps(self.nemo, indent=1))

    # ------------------------------------------------------------------------ steps

    def run(self, *step: str, env: dict[str, str] | None = None, ok: bool = True) -> Any:
        """Run one driver step to the end and return its JSON answer."""
        done = subprocess.run(
            [str(self.python), str(DRIVER), str(self.workdir), *step],
            capture_output=True,
            text=True,
            env=self._env(env),
            check=False,
            timeout=600,
        )
        if ok and done.returncode != 0:
            msg = f"driver step {step} failed ({done.returncode}):\n{done.stderr[-4000:]}"
            raise AssertionError(msg)
        if done.returncode != 0:
            return {"returncode": done.returncode, "stderr": done.stderr}
        return json.loads(done.stdout.strip().splitlines()[-1])

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NX_")}
        env["TZ"] = "America/Denver"
        env.update(extra or {})
        return env

    def init(self) -> Any:
        """Create the database with ``nexuslims db init`` and add the instrument."""
        return self.run("init")

    def guard(self) -> None:
        """Add our tables and the lifecycle guard with ``nexuslims-lifecycle init``."""
        from nexuslims_lifecycle.store import SessionLogStore

        with SessionLogStore(self.db) as store:
            store.init()

    def harvest(self) -> Any:
        """Harvest NEMO with NexusLIMS's own harvester."""
        return self.run("harvest")

    def build(self, env: dict[str, str] | None = None) -> Any:
        """Run NexusLIMS's record builder (it harvests first, as in production)."""
        return self.run("build", env=env)

    def sql(self, statement: str) -> Any:
        """Run an operator's SQL statement on the database."""
        return self.run("sql", statement)

    @contextlib.contextmanager
    def building(self, paused_at: int) -> Iterator[None]:
        """Run a build that stops inside the build of ``paused_at`` until the block ends."""
        pause = self.workdir / "pause"
        log = self.workdir / "paused-build.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [str(self.python), str(DRIVER), str(self.workdir), "build"],
                stdout=sink,
                stderr=sink,
                env=self._env(None),
            )
        try:
            deadline = time.monotonic() + WAIT
            while not (pause / f"{paused_at}.paused").exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    msg = f"the build never reached session {paused_at}: {log.read_text()}"
                    raise AssertionError(msg)
                time.sleep(0.05)
            yield
        finally:
            pause.mkdir(exist_ok=True)
            (pause / f"{paused_at}.go").write_text("go")
            process.wait(timeout=600)
        assert process.returncode == 0, log.read_text()[-4000:]

    # ----------------------------------------------------------------------- reading

    def rows(self, session: str | None = None) -> list[tuple[str, str, str, str | None]]:
        """Return (event_type, record_status, timestamp, user) of rows, in id order."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            query = "SELECT event_type, record_status, timestamp, user FROM session_log"
            args: tuple[str, ...] = ()
            if session is not None:
                query += " WHERE session_identifier = ?"
                args = (session,)
            return list(conn.execute(query + " ORDER BY id_session_log", args))
        finally:
            conn.close()

    def statuses(self, session: str) -> list[tuple[str, str]]:
        """Return (event_type, record_status) of a session's rows, in id order."""
        return [(event, status) for event, status, _at, _user in self.rows(session)]

    def journal_mode(self) -> str:
        """Return the database file's journal mode, read without changing it."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
        finally:
            conn.close()
