"""Drive the real NexusLIMS 2.8 against a work directory, one named step per call.

Runs with the NexusLIMS virtual environment's python, never with ours: it imports
``nexusLIMS`` and nothing of ``nexuslims_lifecycle``. Every ``session_log`` write it
causes is made by NexusLIMS's own code (its CLI, harvester and record builder) or is
an operator's documented SQL statement. Only three things are replaced:

- the HTTP layer (``requests.Session.request``): NEMO answers from ``nemo.json`` in the
  work directory, and any other request fails (no network);
- record generation (``record_builder.build_record``): per session, the plan in
  ``nemo.json`` chooses what happens; consent and reservation outcomes still come from
  NexusLIMS's own NEMO harvester (``get_reservation_event``), "no files" from its own
  file search on an empty instrument directory;
- validation (``record_builder.validate_record``) and export
  (``record_builder.export_records``).

Usage: ``python nexuslims_driver.py WORKDIR STEP [ARG]``, steps: ``init``, ``harvest``,
``build``, ``sql STATEMENT``, ``upgrade``, ``check``, ``enums``, ``autogenerate``.
The step prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

NEMO_API = "https://nemo.example.org/api/"
CDCS_URL = "https://cdcs.invalid/"
INSTRUMENT = "FEI-Titan-TEM-635816"
TOOL_ID = 10
PAUSE_TIMEOUT = 300.0  # seconds a paused build waits for the test to release it
CRASH_EXIT = 70  # the exit code of a build process killed mid-build on purpose


def environment(workdir: Path) -> dict[str, str]:
    """Return the NexusLIMS configuration for ``workdir`` (no network, no .env file)."""
    env = {
        "NX_DB_PATH": str(workdir / "nexuslims.db"),
        "NX_DATA_PATH": str(workdir / "data"),
        "NX_INSTRUMENT_DATA_PATH": str(workdir / "instrument_data"),
        "NX_CDCS_URL": CDCS_URL,
        "NX_CDCS_TOKEN": "interop-stub",
        "NX_NEMO_ADDRESS_1": NEMO_API,
        "NX_NEMO_TOKEN_1": "interop-stub",
    }
    for name in ("data", "instrument_data", "instrument_data/titan"):
        (workdir / name).mkdir(parents=True, exist_ok=True)
    return env


def world(workdir: Path) -> dict:
    """Return the NEMO world the test wrote: users, usage events, plans."""
    path = workdir / "nemo.json"
    if not path.exists():
        return {"users": [], "usage_events": [], "plans": {}}
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- HTTP stub


def _nemo_answer(workdir: Path, url: str) -> tuple[int, object]:
    """Return the status and JSON body NEMO (or CDCS's login check) would send for ``url``."""
    if url == f"{CDCS_URL}rest/workspace/read_access/":
        return 200, []  # the builder's preflight check of the (stubbed) export destination
    if not url.startswith(NEMO_API):
        return 599, {"detail": f"no network in the interop suite: {url}"}
    parts = urlsplit(url)
    endpoint = parts.path.removeprefix(urlsplit(NEMO_API).path)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    nemo = world(workdir)
    tool = {"id": TOOL_ID, "name": "Titan TEM", "_category": "Microscopes"}
    tables: dict[str, list[dict]] = {
        "tools/": [tool],
        "users/": nemo["users"],
        "projects/": [],
        "reservations/": [],
        "usage_events/": [_usage_event(event, nemo["plans"]) for event in nemo["usage_events"]],
    }
    if endpoint == "":
        return 200, {}
    if endpoint not in tables:
        return 404, {"detail": f"unknown endpoint {endpoint}"}
    rows = tables[endpoint]
    if "id" in query:
        rows = [row for row in rows if str(row["id"]) == query["id"]]
    if "id__in" in query:
        rows = [row for row in rows if str(row["id"]) in query["id__in"].split(",")]
    if "username__iexact" in query:
        rows = [row for row in rows if row["username"].lower() == query["username__iexact"].lower()]
    return 200, rows


def _usage_event(event: dict, plans: dict) -> dict:
    """Return a NEMO usage event; its run_data carries the consent the plan needs."""
    outcome = plans.get(str(event["id"]), {}).get("outcome", "built")
    consent = {"no_consent": "Disagree", "no_reservation": None}.get(outcome, "Agree")
    run_data = None
    if consent is not None:
        run_data = json.dumps(
            {
                "data_consent": {"user_input": consent},
                "experiment_title": {"user_input": f"interop session {event['id']}"},
            }
        )
    return {
        "id": event["id"],
        "start": event["start"],
        "end": event.get("end"),
        "user": event["user"],
        "operator": event["user"],
        "project": None,
        "tool": TOOL_ID,
        "run_data": run_data,
        "pre_run_data": None,
    }


def install_http_stub(workdir: Path) -> None:
    """Answer every ``requests`` call from the canned NEMO world."""
    import requests

    def request(_session: object, method: str, url: str, **_kwargs: object) -> object:
        status, body = _nemo_answer(workdir, url)
        if status == 599:
            raise requests.ConnectionError(body["detail"])  # type: ignore[index]
        response = requests.Response()
        response.status_code = status
        response.url = url
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.request = requests.Request(method, url).prepare()
        return response

    requests.Session.request = request  # type: ignore[method-assign,assignment]


# ---------------------------------------------------------------- build stubs and plan


def install_build_stubs(workdir: Path) -> None:
    """Replace record generation, validation and export by the plan in nemo.json."""
    from nexusLIMS.builder import record_builder
    from nexusLIMS.exporters.base import ExportResult
    from nexusLIMS.harvesters.nemo.utils import id_from_url

    plans: dict[str, dict] = world(workdir)["plans"]
    invalid: set[str] = set()
    exports: dict[str, bool] = {}

    def plan_of(session: object) -> dict:
        return plans.get(str(id_from_url(session.session_identifier)), {})  # type: ignore[attr-defined]

    def build_record(session: object, *_args: object, **_kwargs: object) -> object:
        plan = plan_of(session)
        outcome = plan.get("outcome", "built")
        sid = session.session_identifier  # type: ignore[attr-defined]
        if plan.get("pause"):
            _pause(workdir, str(id_from_url(sid)))
        if outcome == "crash":
            sys.stdout.flush()
            os._exit(CRASH_EXIT)
        if outcome == "error":
            msg = f"planned failure while building {sid}"
            raise RuntimeError(msg)
        if outcome == "no_files":
            # NexusLIMS's own file search over an empty instrument directory raises.
            record_builder.build_acq_activities(
                session.instrument,  # type: ignore[attr-defined]
                session.dt_from,  # type: ignore[attr-defined]
                session.dt_to,  # type: ignore[attr-defined]
                False,  # noqa: FBT003
            )
        # NexusLIMS's own NEMO harvester decides consent and reservation.
        reservation = record_builder.get_reservation_event(session)
        if outcome == "invalid":
            invalid.add(sid)
        exports[sid] = outcome != "not_exported"
        return record_builder.RecordBuildResult(
            xml_text="<Experiment/>", activities=[], reservation_event=reservation
        )

    def validate_record(xml: object) -> bool:
        # NexusLIMS validates a record right after building it: judge the last one built.
        del xml
        return list(exports)[-1] not in invalid

    def export_records(xml_files: list, sessions: list, *_args: object) -> dict:
        return {
            xml: [ExportResult(success=exports[s.session_identifier], destination_name="stub")]
            for xml, s in zip(xml_files, sessions, strict=True)
        }

    record_builder.build_record = build_record
    record_builder.validate_record = validate_record
    record_builder.export_records = export_records


def _pause(workdir: Path, key: str) -> None:
    """Tell the test this build is under way, and wait until it says go on."""
    folder = workdir / "pause"
    folder.mkdir(exist_ok=True)
    (folder / f"{key}.paused").write_text(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_TIMEOUT
    while not (folder / f"{key}.go").exists():
        if time.monotonic() > deadline:
            msg = f"the test never released the paused build of {key}"
            raise TimeoutError(msg)
        time.sleep(0.05)


# ------------------------------------------------------------------------------ steps


def _cli(args: list[str]) -> dict:
    """Run NexusLIMS's own ``nexuslims`` command from this environment."""
    command = [str(Path(sys.executable).parent / "nexuslims"), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def step_init(workdir: Path) -> dict:
    """Create the database with ``nexuslims db init`` and add one NEMO instrument."""
    result = _cli(["db", "init"])
    if result["returncode"] != 0:
        return result
    from nexusLIMS.db.engine import get_engine
    from nexusLIMS.db.models import Instrument
    from sqlmodel import Session

    with Session(get_engine()) as session:
        session.add(
            Instrument(
                instrument_pid=INSTRUMENT,
                api_url=f"{NEMO_API}tools/?id={TOOL_ID}",
                calendar_url="https://nemo.example.org/calendar/titan/",
                location="Bldg 1 Room 2",
                display_name="FEI Titan TEM",
                property_tag="635816",
                filestore_path="titan",
                harvester="nemo",
                timezone_str="America/Denver",
            )
        )
        session.commit()
    return result


def step_harvest(workdir: Path) -> dict:
    """Harvest every NEMO usage event with NexusLIMS's own harvester."""
    install_http_stub(workdir)
    from nexusLIMS.harvesters.nemo.utils import add_all_usage_events_to_db

    add_all_usage_events_to_db()
    return {"harvested": [event["id"] for event in world(workdir)["usage_events"]]}


def step_build(workdir: Path) -> dict:
    """Run the record builder as ``nexuslims build-records`` does, under its lock."""
    import logging

    install_http_stub(workdir)
    install_build_stubs(workdir)
    from nexusLIMS.cli.process_records import _run_with_lock

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if not message.startswith("SessionLog already exists"):
                records.append(f"{record.levelname} {record.name}: {message}")

    logging.getLogger().addHandler(Keep(level=logging.WARNING))
    try:
        _run_with_lock(False, None, None)  # noqa: FBT003
    except SystemExit as stop:  # build_new_session_records exits when nothing is pending
        return {"exit": str(stop.code), "log": records}
    return {"exit": None, "log": records}


def step_sql(statement: str) -> dict:
    """Run an operator's SQL statement as ``sqlite3 $NX_DB_PATH`` would."""
    conn = sqlite3.connect(os.environ["NX_DB_PATH"], isolation_level=None)
    try:
        cursor = conn.execute(statement)
        return {"rowcount": cursor.rowcount}
    finally:
        conn.close()


def step_upgrade(workdir: Path) -> dict:
    """Run ``nexuslims db upgrade`` and report the backups it made."""
    before = set(workdir.glob("nexuslims_backup_*.db"))
    result = _cli(["db", "upgrade"])
    result["backups"] = sorted(str(p) for p in set(workdir.glob("nexuslims_backup_*.db")) - before)
    return result


def step_enums() -> dict:
    """Return NexusLIMS's three enums: docstring and members of each."""
    from nexusLIMS.db import enums

    return {
        name: {
            "doc": getattr(enums, name).__doc__,
            "members": {member.name: member.value for member in getattr(enums, name)},
        }
        for name in ("EventType", "RecordStatus", "ExternalSystem")
    }


def step_autogenerate() -> dict:
    """Return what ``alembic revision --autogenerate`` would propose, without and with a filter.

    The comparison is alembic's own (``compare_metadata``) of NexusLIMS's SQLModel
    metadata against the database, which is what autogenerate writes into a revision.
    """
    import nexusLIMS.db.models  # noqa: F401
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from nexusLIMS.db.engine import get_engine
    from sqlmodel import SQLModel

    def ours_left_alone(
        obj: object, name: str, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        return not (type_ == "table" and reflected and compare_to is None)

    proposals = {}
    with get_engine().connect() as conn:
        for label, opts in (("plain", {}), ("filtered", {"include_object": ours_left_alone})):
            context = MigrationContext.configure(conn, opts=opts)
            diffs = compare_metadata(context, SQLModel.metadata)
            proposals[label] = [_describe(diff) for diff in diffs]
    return proposals


def _describe(diff: object) -> str:
    """Return one autogenerate difference as text, e.g. ``remove_table status_history``."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return "; ".join(_describe(item) for item in diff)
    kind, *rest = diff  # type: ignore[misc]
    if kind.startswith("modify_"):  # (kind, schema, table, column, ...)
        return f"{kind} {rest[1]}.{rest[2]}"
    target = rest[0]
    return f"{kind} {getattr(target, 'name', None) or target}"


def main(argv: list[str]) -> int:
    """Run one step and print its JSON result."""
    workdir = Path(argv[1]).resolve()
    step = argv[2]
    os.environ.update(environment(workdir))
    os.chdir(workdir)  # NexusLIMS reads a .env from the working directory: there is none
    steps = {
        "init": lambda: step_init(workdir),
        "harvest": lambda: step_harvest(workdir),
        "build": lambda: step_build(workdir),
        "sql": lambda: step_sql(argv[3]),
        "upgrade": lambda: step_upgrade(workdir),
        "check": lambda: _cli(["db", "check"]),
        "enums": step_enums,
        "autogenerate": step_autogenerate,
    }
    print(json.dumps(steps[step](), default=str))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
