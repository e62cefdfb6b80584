"""The lifecycle reduced to what a diagram shows: statuses, moves, marks.

Every renderer in :mod:`nexuslims_lifecycle.diagrams` draws from this one small form,
built from :data:`~nexuslims_lifecycle.rules.LIFECYCLE`, so no two formats can tell
different stories.

Edges: one per legal (source, event) of the lifecycle (its ``moves``), never merged.
Two events between the same two statuses would be drawn as two arrows, each with its
own label and guard; the lifecycle has no such pair today, and keeping them apart
means a new one cannot hide a guard inside a merged label. Moves stay in table order,
so output is the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from nexuslims_lifecycle.enums import RecordStatus
from nexuslims_lifecycle.rules import LIFECYCLE, Lifecycle, parse_status

__all__ = ["DiagramModel", "Edge", "Move", "Node", "build_model"]

TITLE = "NexusLIMS record lifecycle"


@dataclass(frozen=True, slots=True)
class Node:
    """One status as a diagram draws it."""

    name: str
    meaning: str
    initial: bool
    final: bool
    current: bool


@dataclass(frozen=True, slots=True)
class Move:
    """One row of the lifecycle table: an event, its sources, its destination."""

    event: str
    sources: tuple[str, ...]
    dest: str
    meaning: str
    by: str
    guard: str | None

    @property
    def operator(self) -> bool:
        """Return whether an operator makes this move (drawn apart from the rest)."""
        return self.by == "operator"

    @property
    def label(self) -> str:
        """Return the arrow label: the event, ``[guard]`` if any, ``(operator)`` for one."""
        label = f"{self.event} [{self.guard}]" if self.guard else self.event
        return f"{label} (operator)" if self.operator else label


@dataclass(frozen=True, slots=True)
class Edge:
    """One arrow: a move from one of its sources."""

    source: str
    dest: str
    move: Move


@dataclass(frozen=True, slots=True)
class DiagramModel:
    """Everything a renderer needs, in a fixed order.

    ``edges`` holds one arrow per legal (source, event) of the lifecycle, in table order.
    """

    title: str
    nodes: tuple[Node, ...]
    moves: tuple[Move, ...]
    edges: tuple[Edge, ...]

    @property
    def initial(self) -> Node:
        """Return the node every session starts in."""
        return next(node for node in self.nodes if node.initial)

    @property
    def final(self) -> tuple[Node, ...]:
        """Return the final nodes (only an operator moves on from them), in enum order."""
        return tuple(node for node in self.nodes if node.final)

    @property
    def current(self) -> Node | None:
        """Return the highlighted node, if any."""
        return next((node for node in self.nodes if node.current), None)


def build_model(
    lifecycle: Lifecycle = LIFECYCLE, highlight: RecordStatus | str | None = None
) -> DiagramModel:
    """Return the diagram form of ``lifecycle``, with ``highlight`` marked as current.

    Raises
    ------
    UnknownStatus
        When ``highlight`` is not a status (exact value or member).
    """
    current = None if highlight is None else parse_status(highlight)
    nodes = tuple(
        Node(
            status.value,
            status.description,
            initial=status is lifecycle.initial,
            final=status in lifecycle.final,
            current=status is current,
        )
        for status in RecordStatus
    )
    moves = {
        id(rule): Move(
            rule.event,
            tuple(source.value for source in rule.sources),
            rule.dest.value,
            rule.meaning,
            rule.by,
            rule.guard,
        )
        for rule in lifecycle.rules
    }
    edges = tuple(
        Edge(source.value, rule.dest.value, moves[id(rule)])
        for (source, _), rule in lifecycle.moves.items()
    )
    return DiagramModel(TITLE, nodes, tuple(moves.values()), edges)
