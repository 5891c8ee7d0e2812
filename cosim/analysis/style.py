"""What every figure shares: the colour of each event kind, labels, and saving (matplotlib, off-screen).

No global style is changed. Kinds are coloured from :data:`KIND_COLORS`: each
pair a reader must tell apart in one bar (forward / backward, uplink / adapter
upload, downlink / broadcast) gets two different hues, not two shades of one.
A kind not listed (a new strategy's) gets a neutral grey and still appears in
every legend.
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")  # off-screen: reports are written by scripts and on headless machines

import matplotlib.pyplot as plt  # noqa: E402

# Device compute indigo / green, server compute cyan, waiting red (idle: pale grey); uplink orange / olive,
# downlink purple / pink / dark gold.
KIND_COLORS = {
    "client_forward": "#3b4cc0", "client_backward": "#2ca02c", "local_step": "#3b4cc0",
    "server_step": "#17becf", "server_queue": "#d62728", "aggregate": "#8c564b",
    "uplink": "#ff7f0e", "adapter_upload": "#bcbd22",
    "downlink": "#9467bd", "broadcast": "#e377c2", "model_download": "#8c6d31", "idle": "#e5e5e5",
}
_GREYS = ("#7f7f7f", "#b0b0b0", "#505050", "#d0d0d0")
FED_SERVER = -1


def kind_colors(kinds) -> dict[str, str]:
    """A colour per kind: the fixed palette, then greys for kinds it does not know."""
    out, extra = {}, 0
    for kind in kinds:
        if kind in KIND_COLORS:
            out[kind] = KIND_COLORS[kind]
        else:
            out[kind] = _GREYS[extra % len(_GREYS)]
            extra += 1
    return out


def row_label(client: int) -> str:
    return "fed. server" if client == FED_SERVER else f"client {client}"


def legend_right(ax, handles=None, labels=None, **kw) -> None:
    """A legend outside the axes, on the right (``handles`` with ``labels``, or handles that carry their own)."""
    if handles is not None:
        kw["handles"] = handles
        if labels is not None:
            kw["labels"] = labels
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize="small", **kw)


def no_offset(ax) -> None:
    """Plain tick labels: no ``+1.081e1`` offset that a reader has to add back in their head."""
    for axis in (ax.xaxis, ax.yaxis):
        fmt = axis.get_major_formatter()
        if hasattr(fmt, "set_useOffset"):
            fmt.set_useOffset(False)


def short_label(label: str, width: int = 28) -> str:
    """A category label, numbers of a list in ``%g`` form, cut to ``width`` characters."""
    try:
        values = json.loads(label)
    except ValueError:
        values = None
    if isinstance(values, list) and all(isinstance(v, (int, float)) for v in values):
        label = "[" + ", ".join(f"{v:g}" for v in values) + "]"
    return label if len(label) <= width else label[:width - 3] + "..."


def save(fig, path) -> None:
    """Write ``fig`` as PNG and release it."""
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
