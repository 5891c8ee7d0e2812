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


if __name__ == "__main__":
    print(render_reference(), end="")
