"""The scenario reference (README), rendered from the schema so the two cannot drift apart."""

from __future__ import annotations

import dataclasses

from .fields import section_fields, to_plain
from .schema import Scenario


def _default(value) -> str:
    plain = to_plain(value)
    if plain is None:
        return "null"
    if isinstance(plain, float):
        return f"{plain:g}"
    if isinstance(plain, list):
        return "[" + ", ".join(str(v) for v in plain) + "]"
    return str(plain)


def render_reference() -> str:
    """A markdown table per section: key, default, meaning."""
    top, sections = [], []
    for field, tp in section_fields(Scenario):
        if dataclasses.is_dataclass(tp):
            rows = [f"| `{field.name}.{f.name}` | `{_default(f.default)}` | {f.metadata['doc']} |"
                    for f, _ in section_fields(tp)]
            sections.append(f"**`{field.name}`**: {field.metadata['doc']}\n\n| key | default | meaning |\n"
                            "|---|---|---|\n" + "\n".join(rows))
        else:
            top.append(f"| `{field.name}` | `{_default(field.default)}` | {field.metadata['doc']} |")
    head = "| key | default | meaning |\n|---|---|---|\n" + "\n".join(top)
    return "\n\n".join([head, *sections]) + "\n"


MARKERS = ("<!-- scenario-reference:start -->\n", "<!-- scenario-reference:end -->")


def update_readme(path: str) -> None:
    """Replace the text between the README's scenario-reference markers with the rendered reference."""
    with open(path) as fh:
        text = fh.read()
    head, sep, rest = text.partition(MARKERS[0])
    _, sep2, tail = rest.partition(MARKERS[1])
    if not (sep and sep2):
        raise SystemExit(f"{path}: scenario-reference markers not found")
    with open(path, "w") as fh:
        fh.write(head + MARKERS[0] + render_reference() + MARKERS[1] + tail)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        update_readme(sys.argv[2])
    else:
        print(render_reference(), end="")
