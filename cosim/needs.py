"""What a run will need before it starts: events, trace rows and memory, against this machine's memory.

:func:`estimate_needs` counts, from the scenario alone (no model loaded, no torch), at most how many
rows the trace will hold and about how many bytes the run will hold at its peak:

- trace: the rows are kept in memory until the run ends, then turned into DataFrames and written, so
  the peak holds both: :data:`EVENT_ROW_BYTES` per event row, :data:`CLIENT_ROW_BYTES` per row of
  ``clients.parquet`` (measured: 0.96 kB per event row, one million rows, rows + DataFrame + parquet);
  a replay computed round by round in one go keeps its rows as columns: :data:`BLOCK_ROW_BYTES`
  (measured: 1.58 GB peak for 3.26 million rows of 1,000 clients x 100 rounds, about 0.42 kB a row
  beside the client rows and the fixed part);
- fading and radio: per client its links, streams and the fading windows it keeps
  (:class:`channel.BlockFading` keeps 2 chunks of 256 blocks of each subchannel in use and one index
  per subchannel of the band; a replay's link timelines a few chunks of rates), a TDL's per-subchannel
  responses, and the cached gains of every subchannel in use (measured: 150-190 kB per client with
  fading, 20 kB without, plus 8 bytes per client and subchannel of the band);
- model (real workload): the frozen base model once, and per client its LoRA weights on both sides
  of the cut with their two AdamW moments (12 bytes per weight; SmolLM2 at rank 8 on q/k/v/o: 0.92 M
  weights, 11.5 MB measured per extra client); the LoRA weights are counted as if every adapted
  projection were hidden x hidden (2 r H per module), the blocks as 12 H^2 weights (PaLM appendix B).

The figures are estimates (within about 25% of what was measured: high for a replay's trace, low for
SmolLM2, whose embeddings are not counted); a run is refused only when the estimate exceeds the memory
available, so that a scenario that might fit is not refused. The growth of the fading state with the simulated time (one value per subchannel in use and
256 blocks, about 40 bytes) is not counted: it is small against the trace of the same time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .fastreplay import scenario_applies
from .scenario.schema import ASYNC_MODES, SPLIT_STRATEGIES, Scenario

# Measured on this project's machines (module docstring); bytes.
EVENT_ROW_BYTES = 1000
BLOCK_ROW_BYTES = 500                 # a replay computed in one go (cosim.fastreplay): rows kept as columns
CLIENT_ROW_BYTES = 1700
ROUND_ROW_BYTES = 2000
CLIENT_RADIO_BYTES = 200_000          # links, streams and fading windows of one client, with fading
CLIENT_STATIC_RADIO_BYTES = 20_000    # the same without small-scale fading
BAND_INDEX_BYTES = 8                  # per client and subchannel of a band (BlockFading's index of the band)
TDL_BYTES_PER_SUBCHANNEL = 420        # per client and subchannel: a TDL's taps and frequency response
CACHED_GAINS_BYTES = 2 * 256 * 16     # per subchannel in use: two cached chunks of complex gains
REPLAY_BASE_BYTES = 200_000_000       # Python, numpy, pandas, pyarrow, SimPy and the run's fixed parts
REAL_BASE_BYTES = 800_000_000         # the same with torch, the tokenizer and the data (tiny-llama: 775 MB peak)
ADAPTER_BYTES_PER_WEIGHT = 12         # float32 weight and its two AdamW moments
DEFAULT_TARGETS = 2                   # LoRA on the query and value projections when target_modules is null

# Events of one client's local iteration (split: forward, uplink, server queue, server step, downlink,
# backward; federated LoRA: one local step), of one client's round (model download, adapter upload,
# broadcast) and of one round (aggregation, idle). Upper bounds: a queue or a download is not always there.
SPLIT_EVENTS_PER_ITERATION = 6
LOCAL_EVENTS_PER_ITERATION = 1
EVENTS_PER_CLIENT_ROUND = 3
EVENTS_PER_ROUND = 2

#: Environment variable that sets the memory a run may use, in bytes (else what the machine has available).
MEMORY_ENV = "COSIM_MEMORY_BYTES"


@dataclass(frozen=True)
class Needs:
    """A run's estimated needs: rows of its trace and bytes of memory at its peak."""

    events: int
    client_rows: int
    round_rows: int
    trace_bytes: int
    fading_bytes: int
    model_bytes: int
    base_bytes: int

    @property
    def trace_rows(self) -> int:
        return self.events + self.client_rows + self.round_rows

    @property
    def total_bytes(self) -> int:
        return self.trace_bytes + self.fading_bytes + self.model_bytes + self.base_bytes


def client_rounds(sc: Scenario) -> int:
    """Client-rounds of work the run holds at most: selected clients x rounds (asynchronous: the updates
    folded in, one per FedAsync step or buffer_size per FedBuff step, plus the clients still at work)."""
    k, a = sc.clients.count, sc.aggregation
    needed = min(k, max(1, math.ceil(sc.participation.fraction * k - 1e-9)))
    if a.mode in ASYNC_MODES:
        per_update = a.buffer_size if a.mode == "fedbuff" else 1
        return sc.training.rounds * per_update + needed
    over = a.over_selection if a.mode == "over_selection" else 1.0
    selected = min(k, math.ceil(needed * over - 1e-9))
    return sc.training.rounds * selected


def lora_weights(sc: Scenario, n_layers: int, hidden_size: int) -> int:
    """LoRA weights of one client on both sides of the cut: layers x modules x 2 r H (every module as H x H)."""
    targets = DEFAULT_TARGETS if sc.lora.target_modules is None else len(sc.lora.target_modules)
    return n_layers * targets * 2 * sc.lora.rank * hidden_size


def estimate_needs(sc: Scenario, *, model_shape=None) -> Needs:
    """The needs of running ``sc`` (see the module docstring for what is counted and the constants).

    ``model_shape``: ``(n_layers, hidden_size)`` of the model, for a real workload (default: from
    :func:`cosim.model_info.model_shape`, read from its configuration without loading it).
    """
    k, ch = sc.clients.count, sc.channel
    work = client_rounds(sc)
    per_iteration = (SPLIT_EVENTS_PER_ITERATION if sc.strategy.name in SPLIT_STRATEGIES
                     else LOCAL_EVENTS_PER_ITERATION)
    events = work * (sc.training.local_iterations * per_iteration + EVENTS_PER_CLIENT_ROUND) \
        + sc.training.rounds * EVENTS_PER_ROUND
    row_bytes = BLOCK_ROW_BYTES if scenario_applies(sc) else EVENT_ROW_BYTES
    trace = events * row_bytes + work * CLIENT_ROW_BYTES + sc.training.rounds * ROUND_ROW_BYTES

    fading = ch.fading != "none"
    bands = ch.n_subchannels + (ch.downlink_n_subchannels or 0)
    radio = k * ((CLIENT_RADIO_BYTES if fading else CLIENT_STATIC_RADIO_BYTES) + BAND_INDEX_BYTES * bands)
    if ch.fading == "tdl":
        radio += k * TDL_BYTES_PER_SUBCHANNEL * bands
    if fading:
        radio += CACHED_GAINS_BYTES * max(bands, k)

    if sc.workload.kind == "replay":
        model, base = 0, REPLAY_BASE_BYTES
    else:
        if model_shape is None:
            from .model_info import model_shape as read_shape

            shape = read_shape(sc.model.name)
            model_shape = (shape.n_layers, shape.hidden_size)
        n_layers, hidden = model_shape
        weight_bytes = 2 if sc.runtime.base_dtype == "bfloat16" else 4
        model = 12 * n_layers * hidden * hidden * weight_bytes \
            + k * ADAPTER_BYTES_PER_WEIGHT * lora_weights(sc, n_layers, hidden)
        base = REAL_BASE_BYTES
    return Needs(events=events, client_rows=work, round_rows=sc.training.rounds, trace_bytes=trace,
                 fading_bytes=radio, model_bytes=model, base_bytes=base)


def available_memory_bytes(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Memory a run may use: ``$COSIM_MEMORY_BYTES`` if set, else the machine's MemAvailable (Linux), else
    its free physical pages; None when nothing says (then nothing is refused)."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if text:
        try:
            return int(float(text))
        except ValueError:
            return None
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024          # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def size_text(n_bytes: float) -> str:
    """``1.2 GB`` (powers of 1000)."""
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{int(n_bytes)} B"


def count_text(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"{n:.3g}"


def parts_text(needs: Needs) -> str:
    """The memory by part: ``trace 1.2 GB, radio and fading 3 MB, ...``."""
    parts = [f"trace {size_text(needs.trace_bytes)}", f"radio and fading {size_text(needs.fading_bytes)}"]
    if needs.model_bytes:
        parts.append(f"model and adapters {size_text(needs.model_bytes)}")
    return ", ".join([*parts, f"fixed {size_text(needs.base_bytes)}"])


def describe(needs: Needs) -> str:
    """One line: events, trace rows and the memory by part."""
    return (f"at most {count_text(needs.events)} events, {count_text(needs.trace_rows)} trace rows; "
            f"memory about {size_text(needs.total_bytes)} ({parts_text(needs)})")


def memory_problem(sc: Scenario, needs: Needs, available_bytes: int | None) -> str | None:
    """Why ``sc`` cannot run in ``available_bytes`` (naming the settings to lower), or None when it fits."""
    if available_bytes is None or needs.total_bytes <= available_bytes:
        return None
    c, t = sc.clients.count, sc.training
    by_part = {
        "trace": (needs.trace_bytes, f"training.rounds ({t.rounds}), clients.count ({c}), "
                                     f"training.local_iterations ({t.local_iterations}) or participation.fraction "
                                     f"({sc.participation.fraction:g})"),
        "radio and fading": (needs.fading_bytes, f"clients.count ({c}), channel.n_subchannels "
                                                 f"({sc.channel.n_subchannels}) or channel.fading "
                                                 f"({sc.channel.fading!r}; 'none' keeps no fading state)"),
        "model and adapters": (needs.model_bytes, f"clients.count ({c}), lora.rank ({sc.lora.rank}), "
                                                  f"lora.target_modules or model.name, or use workload.kind: replay"),
    }
    largest = sorted((v for v in by_part.items() if v[1][0]), key=lambda kv: -kv[1][0])
    lower = "; ".join(f"for the {name}, lower {settings}" for name, (_, settings) in largest[:2])
    return (f"needs about {size_text(needs.total_bytes)} of memory ({parts_text(needs)}; at most "
            f"{count_text(needs.events)} events), more than the {size_text(available_bytes)} available here; "
            f"{lower} (or set {MEMORY_ENV} to the bytes it may use)")
