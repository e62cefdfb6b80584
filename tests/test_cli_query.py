"""The query commands: diagram, can, explain, replay (and the docs they generate)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from design_table import by
from expected_table import EXPECTED
from nexuslims_lifecycle.cli import main
from nexuslims_lifecycle.diagrams import render
from nexuslims_lifecycle.enums import RecordStatus as S

DOCS = Path(__file__).parent.parent / "docs"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FINAL = {S.COMPLETED, S.NO_CONSENT}
GUARDS = {"find_no_files": "file_delay_elapsed"}


def run(*args: str) -> Result:
    """Invoke the CLI with stdout and stderr kept apart."""
    return CliRunner().invoke(main, list(args))


def run_json(*args: str) -> tuple[int, Any]:
    """Invoke the CLI with ``--json`` and return (exit code, parsed stdout)."""
    result = run(*args, "--json")
    return result.exit_code, json.loads(result.stdout)


def assert_bad_input(result: Result, *fragments: str) -> None:
    """Exit 2, the message on stderr naming the fragments, nothing on stdout, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped error


def moves_from(status: S) -> list[tuple[str, S]]:
    """(event, destination) legal from ``status``, from the hand-written table."""
    return [(event, dest) for (source, event), dest in EXPECTED.items() if source is status]


# --- diagram -------------------------------------------------------------------------


def test_diagram_prints_mermaid_by_default() -> None:
    result = run("diagram")
    assert result.exit_code == 0
    assert result.stdout == render("mermaid")


@pytest.mark.parametrize("spelling", ["dot", "DOT", "Markdown", "mermaid"])
def test_diagram_format_is_case_insensitive(spelling: str) -> None:
    result = run("diagram", "--format", spelling)
    assert result.exit_code == 0
    assert result.stdout == render(spelling.lower())


def test_diagram_highlight_takes_any_case() -> None:
    result = run("diagram", "-f", "dot", "--highlight", "to_be_built")
    assert result.exit_code == 0
    assert result.stdout == render("dot", highlight=S.TO_BE_BUILT)


def test_diagram_writes_a_file_and_says_so_on_stderr(tmp_path: Path) -> None:
    target = tmp_path / "lifecycle.md"
    result = run("diagram", "-f", "markdown", "-o", str(target))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"wrote markdown diagram to {target}" in result.stderr
    assert target.read_text(encoding="utf-8") == render("markdown")
    assert target.stat().st_mode & 0o777 == 0o644
    assert [path.name for path in tmp_path.iterdir()] == ["lifecycle.md"]


def test_diagram_writes_png_bytes_to_a_file(tmp_path: Path) -> None:
    pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    target = tmp_path / "lifecycle.png"
    result = run("diagram", "--format", "png", "--output", str(target))
    assert result.exit_code == 0
    assert target.read_bytes() == render("png")


def test_diagram_png_goes_to_stdout_when_piped() -> None:
    pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    result = run("diagram", "-f", "png")
    assert result.exit_code == 0
    assert result.stdout_bytes[:8] == PNG_SIGNATURE


def test_diagram_refuses_png_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nexuslims_lifecycle.cli._query._stdout_is_terminal", lambda: True)
    assert_bad_input(run("diagram", "-f", "png"), "png is binary", "pass -o FILE")


def test_diagram_json_carries_text_content() -> None:
    code, data = run_json("diagram", "-f", "mermaid", "--highlight", "error")
    assert code == 0
    assert data == {
        "format": "mermaid",
        "highlight": "ERROR",
        "output": None,
        "encoding": "utf-8",
        "content": render("mermaid", highlight="ERROR"),
    }


def test_diagram_json_carries_png_as_base64() -> None:
    pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    code, data = run_json("diagram", "-f", "png")
    assert code == 0
    assert data["encoding"] == "base64"
    assert base64.b64decode(data["content"]) == render("png")


def test_diagram_json_with_output_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "lifecycle.dot"
    code, data = run_json("diagram", "-f", "dot", "-o", str(target))
    assert code == 0
    assert (data["output"], data["content"], data["highlight"]) == (str(target), None, None)
    assert target.read_text(encoding="utf-8") == render("dot")


def test_diagram_unknown_format_suggests_one() -> None:
    assert_bad_input(
        run("diagram", "--format", "svgg"), "unknown diagram format 'svgg'", "did you mean 'svg'?"
    )


def test_diagram_unknown_highlight_suggests_one() -> None:
    assert_bad_input(
        run("diagram", "--highlight", "eror"), "unknown record status 'eror'", "'ERROR'"
    )


def test_diagram_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "lifecycle.mmd"
    result = run("diagram", "-o", str(target))
    assert result.exit_code == 1
    assert f"cannot write {target}: No such file or directory" in result.stderr
    assert "Traceback" not in result.output
    assert not target.parent.exists()


def test_diagram_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "lifecycle.mmd"
    target.write_text("old\n", encoding="utf-8")

    def refuse(self: Path, other: Path) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "replace", refuse)
    result = run("diagram", "-o", str(target))
    assert result.exit_code == 1
    assert f"cannot write {target}: Permission denied" in result.stderr
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["lifecycle.mmd"]


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_diagram_without_the_render_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fmt: str
) -> None:
    monkeypatch.setitem(sys.modules, "pygraphviz", None)
    target = tmp_path / f"lifecycle.{fmt}"
    result = run("diagram", "-f", fmt, "-o", str(target))
    assert result.exit_code == 1
    assert "needs pygraphviz" in result.stderr
    assert "pip install 'nexuslims-lifecycle[render]'" in result.stderr
    assert "Traceback" not in result.output
    assert not target.exists()


# --- can -----------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "event", "dest"), [(s, e, d) for (s, e), d in EXPECTED.items()])
def test_can_names_the_event_of_every_legal_move(source: S, event: str, dest: S) -> None:
    result = run("can", source.value.lower(), dest.value)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"yes: '{event}' moves {source.value} to {dest.value}\n")


def test_can_notes_the_guard_on_find_no_files() -> None:
    result = run("can", "TO_BE_BUILT", "NO_FILES_FOUND")
    assert result.exit_code == 0
    assert "find_no_files is guarded by file_delay_elapsed" in result.stdout
    assert "the status stays TO_BE_BUILT" in result.stdout


def test_can_lists_legal_moves_when_illegal() -> None:
    result = run("can", "waiting-for-end", "completed")
    assert result.exit_code == 1
    assert result.stdout == (
        "no: no single event moves WAITING_FOR_END to COMPLETED\n"
        "legal from WAITING_FOR_END:\n"
        "  end -> TO_BE_BUILT\n"
        "shortest way there: end, complete\n"
    )


def test_can_lists_the_guard_among_legal_moves() -> None:
    result = run("can", "TO_BE_BUILT", "WAITING_FOR_END")
    assert result.exit_code == 1
    assert "  find_no_files -> NO_FILES_FOUND (guarded by file_delay_elapsed)\n" in result.stdout
    assert "  complete -> COMPLETED\n" in result.stdout
    assert "shortest way there" not in result.stdout  # no legal history goes back


def test_can_a_status_to_itself_is_no_move() -> None:
    result = run("can", "ERROR", "error")
    assert result.exit_code == 1
    assert result.stdout.startswith("no: no single event moves ERROR to ERROR\n")
    assert "shortest way there" not in result.stdout


def test_can_from_a_final_status_names_the_operator_move() -> None:
    result = run("can", "COMPLETED", "TO_BE_BUILT")
    assert result.exit_code == 0
    assert result.stdout == "yes: 'reprocess' moves COMPLETED to TO_BE_BUILT\n"
    refused = run("can", "COMPLETED", "ERROR")
    assert refused.exit_code == 1
    assert refused.stdout == (
        "no: no single event moves COMPLETED to ERROR\n"
        "legal from COMPLETED:\n"
        "  reprocess -> TO_BE_BUILT\n"
        "shortest way there: reprocess, fail\n"
    )


def test_can_json_when_legal() -> None:
    code, data = run_json("can", "error", "to_be_built")
    assert code == 0
    assert data == {
        "from": "ERROR",
        "to": "TO_BE_BUILT",
        "legal": True,
        "events": ["retry"],
        "legal_moves": [
            {
                "event": "retry",
                "to": "TO_BE_BUILT",
                "by": "operator",
                "guard": None,
                "meaning": "an operator requeues the session for another build",
            }
        ],
        "shortest_path": ["retry"],
    }


@pytest.mark.parametrize("source", list(S))
def test_can_json_lists_the_legal_moves_of_every_status(source: S) -> None:
    code, data = run_json("can", source.value, "WAITING_FOR_END")
    assert code == 1
    assert (data["legal"], data["events"]) == (False, [])
    assert data["shortest_path"] == ([] if source is S.WAITING_FOR_END else None)
    moves = [(move["event"], S(move["to"])) for move in data["legal_moves"]]
    assert moves == moves_from(source)
    assert {move["event"]: move["guard"] for move in data["legal_moves"] if move["guard"]} == {
        event: GUARDS[event] for event, _ in moves if event in GUARDS
    }


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["to_be_bilt", "ERROR"], ["Invalid value for 'FROM'", "did you mean 'TO_BE_BUILT'?"]),
        (["ERROR", "complete"], ["Invalid value for 'TO'", "did you mean 'COMPLETED'?"]),
        (["ERROR", "banana"], ["unknown record status 'banana'", "expected one of WAITING"]),
        (["ERROR"], ["Missing argument 'TO'"]),
    ],
)
def test_can_bad_input_exits_2(args: list[str], fragments: list[str]) -> None:
    assert_bad_input(run("can", *args), *fragments)


def test_unknown_status_without_a_near_miss_has_no_suggestion() -> None:
    result = run("can", "ERROR", "banana")
    assert "did you mean" not in result.stderr


# --- explain -------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(S))
def test_explain_json_matches_the_table(status: S) -> None:
    code, data = run_json("explain", status.value.lower())
    assert code == 0
    assert data["status"] == status.value
    assert data["meaning"] == status.description
    assert data["initial"] is (status is S.WAITING_FOR_END)
    assert data["final"] is (status in FINAL)
    assert [move["by"] for move in data["events_out"]] == [
        by(event, status.value) for event, _ in moves_from(status)
    ]
    assert [(move["event"], S(move["to"])) for move in data["events_out"]] == moves_from(status)
    ways_in = {(S(move["from"]), move["event"]) for move in data["ways_in"]}
    assert ways_in == {key for key, dest in EXPECTED.items() if dest is status}
    assert list(data) == [
        "status",
        "meaning",
        "initial",
        "final",
        "events_out",
        "ways_in",
        "shortest_path_from_initial",
    ]


@pytest.mark.parametrize(
    ("status", "path"),
    [
        (S.WAITING_FOR_END, []),
        (S.TO_BE_BUILT, ["end"]),
        (S.COMPLETED, ["end", "complete"]),
        (S.NO_FILES_FOUND, ["end", "find_no_files"]),
    ],
)
def test_explain_gives_the_shortest_path_from_waiting_for_end(status: S, path: list[str]) -> None:
    _, data = run_json("explain", status.value)
    assert data["shortest_path_from_initial"] == path


def test_explain_prints_meaning_moves_and_path() -> None:
    result = run("explain", "to_be_built")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("TO_BE_BUILT: session has ended and needs record generation\n")
    assert "events out" in out
    assert "ways in" in out
    assert "[file_delay_elapsed]" not in out  # rich markup did not swallow anything
    assert "file_delay_elapsed" in out
    assert out.endswith("shortest path from WAITING_FOR_END: end\n")


def test_explain_initial_and_final_statuses_say_so() -> None:
    initial = run("explain", "WAITING_FOR_END").stdout
    assert "initial: every session starts here" in initial
    assert "no event leads here" in initial
    assert "(none needed: it is the initial status)" in initial
    assert "end -> TO_BE_BUILT, by the harvester: the session's END was logged" in initial
    final = run("explain", "no_consent").stdout
    assert "final: the builder is done; only an operator moves a session on" in final
    assert "reprocess -> TO_BE_BUILT, by the operator: an operator has a finished" in final


def test_explain_unknown_status_exits_2() -> None:
    assert_bad_input(run("explain", "complted"), "did you mean 'COMPLETED'?")


# --- replay --------------------------------------------------------------------------


def test_replay_prints_each_step_and_the_final_status() -> None:
    result = run("replay", "end", "FAIL", "retry", "complete")
    assert result.exit_code == 0
    assert result.stdout == (
        "1. end: WAITING_FOR_END -> TO_BE_BUILT\n"
        "2. fail: TO_BE_BUILT -> ERROR\n"
        "3. retry: ERROR -> TO_BE_BUILT\n"
        "4. complete: TO_BE_BUILT -> COMPLETED\n"
        "final status: COMPLETED\n"
    )


def test_replay_stops_at_the_first_illegal_step() -> None:
    result = run("replay", "end", "complete", "retry", "complete")
    assert result.exit_code == 1
    assert result.stdout.endswith(
        "illegal step 3 of 4: cannot 'retry' from COMPLETED: legal from there: reprocess\n"
    )


def test_replay_from_another_status() -> None:
    result = run("replay", "--from", "built_not_exported", "retry", "fail")
    assert result.exit_code == 0
    assert result.stdout.endswith("final status: ERROR\n")


def test_replay_json_when_legal() -> None:
    code, data = run_json("replay", "--from", "ERROR", "retry", "deny_consent")
    assert code == 0
    assert data == {
        "from": "ERROR",
        "events": ["retry", "deny_consent"],
        "legal": True,
        "final": "NO_CONSENT",
        "steps": [
            {"event": "retry", "from": "ERROR", "to": "TO_BE_BUILT"},
            {"event": "deny_consent", "from": "TO_BE_BUILT", "to": "NO_CONSENT"},
        ],
        "error": None,
    }


def test_replay_json_when_illegal() -> None:
    code, data = run_json("replay", "end", "fail", "complete")
    assert code == 1
    assert data["legal"] is False
    assert data["final"] is None
    assert len(data["steps"]) == 2
    assert data["error"] == {
        "index": 2,
        "status": "ERROR",
        "event": "complete",
        "allowed": ["retry"],
        "message": "cannot 'complete' from ERROR: legal from there: retry",
    }


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["end", "fial"], ["unknown lifecycle event 'fial'", "did you mean 'fail'?"]),
        (["--from", "eror", "retry"], ["Invalid value for '--from'", "did you mean 'ERROR'?"]),
        ([], ["Missing argument 'EVENT...'"]),
    ],
)
def test_replay_bad_input_exits_2(args: list[str], fragments: list[str]) -> None:
    assert_bad_input(run("replay", *args), *fragments)


# --- every command -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["diagram", "can", "explain", "replay"])
def test_every_query_command_has_help_and_json(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert f"Usage: main {command} [OPTIONS]" in result.stdout
    assert "--json" in result.stdout
    assert command in run("--help").stdout


def test_python_dash_m_answers_a_query() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nexuslims_lifecycle", "can", "no_files_found", "to_be_built"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout == "yes: 'retry' moves NO_FILES_FOUND to TO_BE_BUILT\n"


def test_in_memory_demo_ends_with_the_mermaid_diagram() -> None:
    result = run("demo", "--in-memory")
    assert result.exit_code == 0
    assert result.stdout.endswith(render("mermaid"))


def test_sqlite_demo_shows_the_diagram_then_ends_with_a_clean_audit(tmp_path: Path) -> None:
    result = run("demo", "--db", str(tmp_path / "demo.db"), "--builders", "2")
    assert result.exit_code == 0
    assert render("mermaid") in result.stdout
    assert result.stdout.index(render("mermaid")) < result.stdout.index("Audit of the demo")
    assert result.stdout.rstrip().endswith("rows in 20 sessions, no findings")


# --- generated docs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt"),
    [("lifecycle.mmd", "mermaid"), ("lifecycle-table.md", "markdown"), ("lifecycle.svg", "svg")],
)
def test_committed_docs_match_what_the_rules_produce(path: str, fmt: str) -> None:
    """docs/ holds exactly what `make diagrams` writes; run it after changing the rules.

    The SVG is laid out with the renderer's fonts (DejaVu Sans, see _render_fonts.conf),
    so it is the same on every machine that has them, as Debian's fontconfig does.
    """
    if fmt == "svg":
        pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    result = run("diagram", "--format", fmt)
    committed = (DOCS / path).read_text(encoding="utf-8")
    assert committed == result.stdout, f"docs/{path} is stale: run `make diagrams`"


def test_readme_shows_the_generated_svg() -> None:
    """The README's picture is the committed SVG, so a code host shows it as is."""
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert re.search(
        r"^!\[The NexusLIMS record lifecycle: [^]]+\]\(docs/lifecycle\.svg\)$", readme, re.M
    )


def test_lifecycle_page_embeds_the_generated_files() -> None:
    page = (DOCS / "lifecycle.md").read_text(encoding="utf-8")
    assert "```{mermaid} /lifecycle.mmd\n```" in page
    assert "```{include} lifecycle-table.md\n```" in page
