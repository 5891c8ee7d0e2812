"""A report's sections: a figure saved beside its markdown, and a two-column table."""

from __future__ import annotations

from pathlib import Path


def figure(out: Path, name: str, fig, title: str, what: str) -> str:
    """Save one figure and return its markdown section."""
    from .plots import save

    save(fig, out / name)
    return f"### {title}\n\n{what}\n\n![{title}]({name})\n"


def table(rows: list[tuple[str, str]], head: tuple[str, str] = ("quantity", "value")) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines) + "\n"
