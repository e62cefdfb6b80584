"""Text renderers: Mermaid, Graphviz DOT and a Markdown table, in pure Python.

Each takes a :class:`~nexuslims_lifecycle.diagrams._model.DiagramModel` and returns
text ending in a newline. Nothing here reads the clock, the environment or a
version, so the same model gives the same text on every run.
"""

from __future__ import annotations

from typing import Final

from nexuslims_lifecycle.diagrams._model import DiagramModel, Edge, Node

__all__ = ["render_dot", "render_markdown", "render_mermaid"]

_CURRENT_FILL: Final = "#ffd54f"
_CURRENT_STROKE: Final = "#e65100"
_OPERATOR_COLOR: Final = "#1565c0"
_INDENT: Final = "    "


def render_mermaid(model: DiagramModel) -> str:
    """Return a Mermaid ``stateDiagram-v2``: ``[*]`` marks start and final statuses.

    Guards are in the labels, and an operator's move is labelled ``(operator)``:
    Mermaid's state diagrams cannot style one arrow apart from the others.
    """
    header = ["---", f"title: {model.title}", "---", "stateDiagram-v2"]
    final = ", ".join(node.name for node in model.final)
    body = [
        "direction LR",
        "classDef final font-weight:bold,stroke-width:3px",
        f"classDef current fill:{_CURRENT_FILL},stroke:{_CURRENT_STROKE},stroke-width:3px",
        f"[*] --> {model.initial.name}",
        *(f"{edge.source} --> {edge.dest} : {edge.move.label}" for edge in model.edges),
        *(f"{node.name} --> [*]" for node in model.final),
        f"class {final} final",
    ]
    if model.current is not None:
        body.append(f"class {model.current.name} current")
    return "\n".join([*header, *(_INDENT + line for line in body)]) + "\n"


def _quote(text: str) -> str:
    """Return ``text`` as a double-quoted DOT string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _dot_node(node: Node) -> str:
    """Return the DOT statement for one status: double border if final, filled if current."""
    # An explicit label: pygraphviz 2.0 drops the default one after a node with label="".
    attributes = [f"label={_quote(node.name)}", f"tooltip={_quote(node.meaning)}"]
    if node.final:
        attributes.append("peripheries=2")
    if node.current:
        attributes += [
            'style="rounded,filled,bold"',
            f"fillcolor={_quote(_CURRENT_FILL)}",
            f"color={_quote(_CURRENT_STROKE)}",
            "penwidth=2",
        ]
    return f"{_quote(node.name)} [{', '.join(attributes)}];"


def _dot_edge(edge: Edge) -> str:
    """Return the DOT statement for one arrow; guarded is dashed, an operator's is blue."""
    attributes = [f"label={_quote(edge.move.label)}", f"tooltip={_quote(edge.move.meaning)}"]
    if edge.move.guard:
        attributes.append("style=dashed")
    if edge.move.operator:
        color = _quote(_OPERATOR_COLOR)
        attributes += [f"color={color}", f"fontcolor={color}"]
    return f"{_quote(edge.source)} -> {_quote(edge.dest)} [{', '.join(attributes)}];"


def render_dot(model: DiagramModel) -> str:
    """Return a Graphviz ``digraph``: a dot for the start, double borders for final statuses."""
    body = [
        f"graph [label={_quote(model.title)}, labelloc=t, rankdir=LR, fontname=Helvetica];",
        "node [shape=box, style=rounded, fontname=Helvetica];",
        "edge [fontname=Helvetica, fontsize=10];",
        '"__start__" [shape=point, width=0.15, label="", tooltip="start"];',
        *(_dot_node(node) for node in model.nodes),
        f'"__start__" -> {_quote(model.initial.name)};',
        *(_dot_edge(edge) for edge in model.edges),
    ]
    return "digraph lifecycle {\n" + "".join(f"{_INDENT}{line}\n" for line in body) + "}\n"


def _cell(text: str) -> str:
    """Return ``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def render_markdown(model: DiagramModel) -> str:
    """Return the lifecycle table (event, by, from, to, meaning) under a line naming the ends."""
    current = model.current.name if model.current else None

    def status(name: str) -> str:
        return f"**{name}**" if name == current else name

    final = ", ".join(status(node.name) for node in model.final)
    lines = [
        f"Initial status: {status(model.initial.name)}. "
        f"Final statuses (the builder is done; only an operator moves on): {final}.",
    ]
    if current is not None:
        lines.append(f"Current status: **{current}**.")
    lines += ["", "| event | by | from | to | meaning |", "|---|---|---|---|---|"]
    for move in model.moves:
        guard = f" (guard: `{move.guard}`)" if move.guard else ""
        sources = ", ".join(status(source) for source in move.sources)
        meaning = _cell(move.meaning + guard)
        dest = status(move.dest)
        lines.append(f"| `{move.event}` | {move.by} | {sources} | {dest} | {meaning} |")
    return "\n".join(lines) + "\n"
