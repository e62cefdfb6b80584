"""Diagrams: every format drawn from the rules, valid, deterministic, extra-free core."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from design_table import MOVES, as_lifecycle, by
from docs_site import MERMAID_DIR, install_mermaid
from expected_table import EXPECTED
from nexuslims_lifecycle import MissingExtra, UnknownFormat, UnknownStatus
from nexuslims_lifecycle.diagrams import FORMATS, render
from nexuslims_lifecycle.diagrams._fontconfig import (
    bundled_fontconfig,
    configure_bundled_fontconfig,
)
from nexuslims_lifecycle.diagrams._model import build_model
from nexuslims_lifecycle.diagrams._text import _quote
from nexuslims_lifecycle.enums import RecordStatus as S

GUARDED = (S.TO_BE_BUILT, S.NO_FILES_FOUND, "find_no_files [file_delay_elapsed]")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def expected_edges() -> set[tuple[str, str, str]]:
    """(source, dest, event) for every move of the design table (tests/design_table.py)."""
    return {(source.value, dest.value, event) for (source, event), dest in EXPECTED.items()}


# --- the intermediate form ---------------------------------------------------


def test_model_has_one_edge_per_event_and_source() -> None:
    edges = build_model().edges
    assert len(edges) == len(EXPECTED) == 14
    assert {(edge.source, edge.dest, edge.move.event) for edge in edges} == expected_edges()


def test_model_marks_initial_final_and_current() -> None:
    model = build_model(highlight="ERROR")
    assert model.initial.name == "WAITING_FOR_END"
    assert [node.name for node in model.final] == ["COMPLETED", "NO_CONSENT"]
    assert model.current is not None
    assert model.current.name == "ERROR"
    assert build_model().current is None


def test_operator_moves_are_marked_by_who_makes_them() -> None:
    operator = {
        (edge.source, edge.move.event) for edge in build_model().edges if edge.move.operator
    }
    assert operator == {
        (source.value, event)
        for (source, event) in EXPECTED
        if by(event, source.value) == "operator"
    }
    assert {move.label for move in build_model().moves if move.operator} == {
        "retry (operator)",
        "reprocess (operator)",
    }


def test_only_find_no_files_carries_a_guard() -> None:
    guarded = {move.event: move.guard for move in build_model().moves if move.guard}
    assert guarded == {"find_no_files": "file_delay_elapsed"}


# A lifecycle of its own: no retry from ERROR, an exporter's complete out of it instead.
OWN = as_lifecycle(
    (*(m for m in MOVES if m[:2] != ("retry", "ERROR")), ("complete", "ERROR", "COMPLETED"))
)


def test_a_lifecycle_of_its_own_is_drawn_from_its_own_moves() -> None:
    model = build_model(OWN)
    assert {(edge.source, edge.dest, edge.move.event) for edge in model.edges} == {
        (source.value, rule.dest.value, event) for (source, event), rule in OWN.moves.items()
    }
    lines = render("mermaid", lifecycle=OWN).splitlines()
    assert "    ERROR --> COMPLETED : complete" in lines
    assert "    ERROR --> TO_BE_BUILT : retry (operator)" not in lines
    assert "    ERROR --> TO_BE_BUILT : retry (operator)" in render("mermaid").splitlines()


def test_a_lifecycle_of_its_own_refuses_a_bad_highlight_and_format() -> None:
    with pytest.raises(UnknownStatus):
        render("mermaid", highlight="EROR", lifecycle=OWN)
    with pytest.raises(UnknownFormat):
        render("gif", lifecycle=OWN)


# --- Mermaid -------------------------------------------------------------------


def mermaid_edges(text: str) -> set[tuple[str, str, str]]:
    """Parse ``A --> B : label`` lines (not [*]) back into (source, dest, event)."""
    pattern = re.compile(
        r"^    (\w+) --> (\w+) : (\w+)(?: \[\w+\])?(?: \(operator\))?$", re.MULTILINE
    )
    return set(pattern.findall(text))


def test_mermaid_is_a_state_diagram_with_every_move() -> None:
    text = render("mermaid")
    assert text.startswith("---\ntitle: NexusLIMS record lifecycle\n---\nstateDiagram-v2\n")
    assert text.endswith("\n")
    assert mermaid_edges(text) == expected_edges()


def test_mermaid_shows_start_ends_and_guard() -> None:
    lines = render("mermaid").splitlines()
    assert "    [*] --> WAITING_FOR_END" in lines
    assert "    COMPLETED --> [*]" in lines
    assert "    NO_CONSENT --> [*]" in lines
    assert "    class COMPLETED, NO_CONSENT final" in lines
    assert "    COMPLETED --> TO_BE_BUILT : reprocess (operator)" in lines
    assert f"    {GUARDED[0].value} --> {GUARDED[1].value} : {GUARDED[2]}" in lines
    assert not any(line.endswith(" current") and "class" in line for line in lines)


@pytest.mark.parametrize("status", list(S))
def test_mermaid_highlight_marks_exactly_that_status(status: S) -> None:
    lines = render("mermaid", highlight=status).splitlines()
    assert lines[-1] == f"    class {status.value} current"
    assert sum("current" in line for line in lines) == 2  # classDef + class


@pytest.fixture(scope="module")
def mermaid_parse() -> Callable[[list[str]], list[dict[str, Any]]]:
    """Mermaid's own parser (npm ``mermaid`` + ``jsdom``), installed on first use."""
    node = install_mermaid()

    def parse(documents: list[str]) -> list[dict[str, Any]]:
        done = subprocess.run(
            [node, "check.mjs"],
            cwd=MERMAID_DIR,
            input=json.dumps(documents),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        results: list[dict[str, Any]] = json.loads(done.stdout)
        return results

    return parse


def test_mermaid_parser_accepts_every_rendering(
    mermaid_parse: Callable[[list[str]], list[dict[str, Any]]],
) -> None:
    """Mermaid's own parser accepts the plain diagram and every highlighted one."""
    documents = [render("mermaid")] + [render("mermaid", highlight=status) for status in S]
    broken = render("mermaid").replace("[*] --> WAITING_FOR_END", "[*] --> --> WAITING_FOR_END")
    results = mermaid_parse([*documents, broken])
    assert results[:-1] == [{"ok": True, "diagramType": "stateDiagram"}] * len(documents)
    assert results[-1]["ok"] is False  # the checker can fail: it is really parsing
    assert "Parse error" in results[-1]["error"]


# --- DOT -----------------------------------------------------------------------


def parse_dot(text: str) -> Any:
    """Return the pygraphviz graph Graphviz's parser builds from ``text``."""
    pygraphviz = pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    return pygraphviz.AGraph(string=text)


def test_dot_is_accepted_by_graphviz_with_every_move() -> None:
    graph = parse_dot(render("dot"))
    assert graph.is_directed()
    assert set(graph.nodes()) == {status.value for status in S} | {"__start__"}
    moves = {
        (str(source), str(dest), graph.get_edge(source, dest, key).attr["label"].split(" ")[0])
        for source, dest, key in graph.edges(keys=True)
        if source != "__start__"
    }
    assert moves == expected_edges()
    assert graph.successors("__start__") == ["WAITING_FOR_END"]


def test_dot_marks_final_statuses_guard_operator_moves_and_highlight() -> None:
    graph = parse_dot(render("dot", highlight="NO_RESERVATION"))
    peripheries = {str(node): node.attr["peripheries"] for node in graph.nodes()}
    assert {name for name, value in peripheries.items() if value == "2"} == {
        "COMPLETED",
        "NO_CONSENT",
    }
    filled = {str(node) for node in graph.nodes() if "filled" in (node.attr["style"] or "")}
    assert filled == {"NO_RESERVATION"}
    guarded = graph.get_edge(GUARDED[0].value, GUARDED[1].value)
    assert guarded.attr["label"] == GUARDED[2]
    assert guarded.attr["style"] == "dashed"
    blue = {
        (str(edge[0]), str(edge[1]), edge.attr["label"])
        for edge in graph.edges()
        if edge.attr["color"] == "#1565c0"
    }
    assert blue == {
        (source.value, dest.value, f"{event} (operator)")
        for (source, event), dest in EXPECTED.items()
        if by(event, source.value) == "operator"
    }


def test_dot_quote_escapes_quotes_and_backslashes() -> None:
    """Quotes survive Graphviz's parser; a backslash is doubled (a literal one in labels)."""
    assert _quote("a \\ b") == '"a \\\\ b"'
    graph = parse_dot("digraph g { a [label=" + _quote('say "hi"') + "]; }")
    assert graph.get_node("a").attr["label"] == 'say "hi"'


# --- Markdown --------------------------------------------------------------------


def table_rows(text: str) -> list[list[str]]:
    """Return the cells of each body row of the Markdown table in ``text``."""
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[1:]]


def test_markdown_table_lists_every_move() -> None:
    text = render("markdown")
    assert "| event | by | from | to | meaning |\n|---|---|---|---|---|\n" in text
    rows = table_rows(text)
    assert len(rows) == 10  # one row per rule of the table
    edges = {
        (source, dest, event.strip("`"))
        for event, _, sources, dest, _ in rows
        for source in sources.split(", ")
    }
    assert edges == expected_edges()
    assert {
        (event.strip("`"), source, who)
        for event, who, sources, _, _ in rows
        for source in sources.split(", ")
    } == {(event, source.value, by(event, source.value)) for (source, event) in EXPECTED}


def test_markdown_names_initial_final_and_guard() -> None:
    text = render("markdown")
    assert text.splitlines()[0] == (
        "Initial status: WAITING_FOR_END. Final statuses (the builder is done; only an operator "
        "moves on): COMPLETED, NO_CONSENT."
    )
    guarded = [row for row in table_rows(text) if row[0] == "`find_no_files`"]
    assert guarded[0][4].endswith("(guard: `file_delay_elapsed`)")
    assert "Current status" not in text


def test_markdown_highlight_bolds_the_status_everywhere() -> None:
    text = render("markdown", highlight="BUILT_NOT_EXPORTED")
    assert "Current status: **BUILT_NOT_EXPORTED**." in text.splitlines()
    cells = [cell for row in table_rows(text) for cell in row[2:4]]
    assert "BUILT_NOT_EXPORTED" not in " ".join(cells).replace("**BUILT_NOT_EXPORTED**", "")
    assert sum("**BUILT_NOT_EXPORTED**" in cell for cell in cells) == 3


# --- SVG and PNG -------------------------------------------------------------------


def test_svg_is_well_formed_xml_naming_every_status() -> None:
    pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    text = render("svg", highlight="ERROR")
    root = ElementTree.fromstring(text.encode())  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    labels = {element.text for element in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {status.value for status in S} <= labels
    assert "find_no_files [file_delay_elapsed]" in labels
    assert "Generated by graphviz" not in text  # version-dependent comment removed
    assert 'fill="#ffd54f"' in text


def test_png_is_a_real_image() -> None:
    pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    data = render("png")
    assert data[:8] == PNG_SIGNATURE
    length, kind, width, height = struct.unpack(">I4sII", data[8:24])
    assert (length, kind) == (13, b"IHDR")
    assert width > 600
    assert height > 200
    assert data[-8:-4] == b"IEND"


def draw_in_a_fresh_process(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter: fontconfig starts once per process."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_image_command_prints_only_its_own_line(tmp_path: Path, fmt: str) -> None:
    """No Fontconfig warning (or anything else) besides the command's own line."""
    pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    target = tmp_path / f"lifecycle.{fmt}"
    done = subprocess.run(
        [sys.executable, "-m", "nexuslims_lifecycle", "diagram", "--format", fmt, "-o", target],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == f"wrote {fmt} diagram to {target}\n"
    assert target.stat().st_size > 1000


def test_svg_on_stdout_comes_alone() -> None:
    pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "nexuslims_lifecycle", "diagram", "--format", "svg"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == render("svg")


RESET_DIRS_SAMPLE = Path("/usr/share/fontconfig/conf.avail/05-reset-dirs-sample.conf")


def test_bundled_fontconfig_left_alone_warns_on_this_host() -> None:
    """The cause is real here: pygraphviz drawing by itself prints the warning we avoid."""
    pygraphviz = pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    if bundled_fontconfig(pygraphviz) is None or not RESET_DIRS_SAMPLE.exists():
        pytest.skip("needs pygraphviz's bundled fontconfig on a host with fontconfig >= 2.14")
    done = draw_in_a_fresh_process(
        "import pygraphviz\n"
        "pygraphviz.AGraph(string='digraph { a -> b }').draw(format='svg', prog='dot')\n"
    )
    assert done.returncode == 0
    assert f'Fontconfig warning: "{RESET_DIRS_SAMPLE}", line 6: unknown element "reset-dirs"' in (
        done.stderr
    )


def test_bundled_fontconfig_takes_our_configuration() -> None:
    pygraphviz = pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    if bundled_fontconfig(pygraphviz) is None:
        pytest.skip("this pygraphviz uses the system's fontconfig: nothing to configure")
    done = draw_in_a_fresh_process(
        "import pygraphviz\n"
        "from nexuslims_lifecycle.diagrams import _fontconfig\n"
        "configure = _fontconfig.configure_bundled_fontconfig\n"
        "print(configure(pygraphviz), configure(pygraphviz))\n"
        "pygraphviz.AGraph(string='digraph { a -> b }').draw(format='png', prog='dot')\n"
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "True True\n", "")


def test_a_configuration_fontconfig_cannot_load_leaves_its_own() -> None:
    """Were our file missing, fontconfig says so, and starts as it would have without us."""
    pygraphviz = pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    if bundled_fontconfig(pygraphviz) is None:
        pytest.skip("this pygraphviz uses the system's fontconfig: nothing to configure")
    done = draw_in_a_fresh_process(
        "import pygraphviz\n"
        "from nexuslims_lifecycle.diagrams import _fontconfig\n"
        "_fontconfig._CONFIG_NAME = 'no-such-fonts.conf'\n"
        "print(_fontconfig.configure_bundled_fontconfig(pygraphviz))\n"
        "pygraphviz.AGraph(string='digraph { a -> b }').draw(format='svg', prog='dot')\n"
    )
    assert (done.returncode, done.stdout) == (0, "False\n")
    assert "Fontconfig error: Cannot load config file" in done.stderr
    assert "no-such-fonts.conf" in done.stderr


def test_without_a_bundled_fontconfig_nothing_is_configured(tmp_path: Path) -> None:
    """A pygraphviz built against the system's Graphviz has no .libs directory."""
    package = tmp_path / "pygraphviz"
    package.mkdir()
    module = types.ModuleType("pygraphviz")
    module.__file__ = str(package / "__init__.py")
    assert bundled_fontconfig(module) is None
    assert configure_bundled_fontconfig(module) is False
    (tmp_path / "pygraphviz.libs").mkdir()
    (tmp_path / "pygraphviz.libs" / "libfontconfig-0123abcd.so.1.12.0").touch()
    assert bundled_fontconfig(module) == tmp_path / "pygraphviz.libs" / (
        "libfontconfig-0123abcd.so.1.12.0"
    )


# --- determinism ---------------------------------------------------------------------

DIGESTS = (
    "import hashlib, sys\n"
    "from nexuslims_lifecycle.diagrams import render\n"
    "for fmt in sys.argv[1:]:\n"
    "    data = render(fmt, highlight='ERROR')\n"
    "    data = data.encode() if isinstance(data, str) else data\n"
    "    print(fmt, hashlib.sha256(data).hexdigest())\n"
)


def digests(formats: list[str], hash_seed: str) -> str:
    """Return the sha256 of each format as rendered by a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", DIGESTS, *formats],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
    )
    return done.stdout


def test_every_format_gives_the_same_bytes_in_fresh_processes() -> None:
    """Two interpreters with different hash seeds draw byte-identical diagrams."""
    pytest.importorskip("pygraphviz", reason="the 'render' extra is not installed")
    formats = list(FORMATS)
    first, second = digests(formats, "1"), digests(formats, "2")
    assert first == second
    assert len(first.splitlines()) == len(FORMATS)
    local = render("png", highlight="ERROR")
    assert f"png {hashlib.sha256(local).hexdigest()}" in first.splitlines()


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "markdown"])
def test_text_formats_repeat_exactly(fmt: str) -> None:
    assert render(fmt) == render(fmt)
    assert render(fmt, highlight="ERROR") != render(fmt)


# --- errors and the optional extra ------------------------------------------------------


def test_unknown_format_names_the_value_and_the_formats() -> None:
    with pytest.raises(
        UnknownFormat, match=r"unknown diagram format 'svgz'.*did you mean 'svg'"
    ) as info:
        render("svgz")
    assert info.value.value == "svgz"
    assert info.value.valid == FORMATS
    assert isinstance(info.value, ValueError)


def test_unknown_highlight_is_refused() -> None:
    with pytest.raises(UnknownStatus, match=r"unknown record status 'error'.*did you mean 'ERROR'"):
        render("mermaid", highlight="error")


def test_text_formats_work_with_pygraphviz_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pygraphviz", None)
    assert render("mermaid").startswith("---\n")
    assert render("dot").startswith("digraph lifecycle {")


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_images_without_pygraphviz_name_the_render_extra(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setitem(sys.modules, "pygraphviz", None)
    pattern = rf"{fmt.upper()} output needs pygraphviz.*\[render\]"
    with pytest.raises(MissingExtra, match=pattern) as info:
        render(fmt)
    assert (info.value.package, info.value.extra) == ("pygraphviz", "render")
    assert isinstance(info.value, ImportError)


def test_core_imports_without_pygraphviz() -> None:
    """A fresh interpreter with pygraphviz blocked imports everything and draws text."""
    code = (
        "import sys; sys.modules['pygraphviz'] = None\n"
        "import nexuslims_lifecycle, nexuslims_lifecycle.cli\n"
        "from nexuslims_lifecycle.diagrams import render\n"
        "print(render('mermaid').splitlines()[3])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stateDiagram-v2\n"


def test_lifecycle_page_describes_every_status_as_the_enum_does() -> None:
    page = (Path(__file__).parents[1] / "docs" / "lifecycle.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    described = {line.split("`")[1]: line.split("|")[2].strip() for line in rows}
    assert described == {status.value: status.description for status in S}
