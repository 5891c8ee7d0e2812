"""The joint optimizer's inputs: a profiled cost table and a problem instance.

Both are frozen records checked once in ``__post_init__``; every problem found is
reported together in one ``ValueError`` (``name: expected ... (got X)``). Arrays are
stored as read-only float arrays, scalars given for per-subchannel or per-client
quantities are broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cosim.errors import InfeasibleError
from solver._checks import as_array, check_int, check_optional_positive


@dataclass(frozen=True, eq=False, kw_only=True)
class CostTable:
    """FLOPs and payload bytes of one training step, per candidate cut and rank.

    Measured by ``llm_split`` (or synthesised for network-only sweeps). Row ``c`` is
    the cut ``cuts[c]`` (the client holds layers ``0..cut-1``), column ``r`` the
    LoRA rank ``ranks[r]``.

    Parameters
    ----------
    cuts : (C,) int
        Candidate split points, distinct.
    ranks : (Rk,) int
        Candidate LoRA ranks, distinct and > 0.
    client_forward_flops, client_backward_flops : (C, Rk) float, FLOPs
        Client-side forward / backward (+ optimizer step) of one local iteration.
    server_flops : (C, Rk) float, FLOPs
        Main-server forward + backward of one client's batch in one iteration.
    activation_bytes : (C,) float, bytes
        Uplink payload of one iteration: cut activations + labels + mask.
    gradient_bytes : (C,) float, bytes
        Downlink payload of one iteration: the gradient at the cut.
    client_adapter_bytes : (C, Rk) float, bytes
        Client-side LoRA adapters uploaded once per round to the federated server.
    """

    cuts: np.ndarray
    ranks: np.ndarray
    client_forward_flops: np.ndarray
    client_backward_flops: np.ndarray
    server_flops: np.ndarray
    activation_bytes: np.ndarray
    gradient_bytes: np.ndarray
    client_adapter_bytes: np.ndarray

    def __post_init__(self):
        problems: list[str] = []
        cuts = np.asarray(self.cuts)
        ranks = np.asarray(self.ranks)
        n_cuts = cuts.size if cuts.ndim == 1 else 0
        n_ranks = ranks.size if ranks.ndim == 1 else 0
        if n_cuts == 0:
            problems.append(f"cuts: expected a non-empty 1-D array of ints (got {self.cuts!r})")
        if n_ranks == 0:
            problems.append(f"ranks: expected a non-empty 1-D array of ints (got {self.ranks!r})")
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        for name, values, lower in (("cuts", cuts, 0), ("ranks", ranks, 1)):
            if values.ndim == 1 and values.size:
                as_int = as_array(problems, name, values, values.shape, dtype=np.int64, lower=lower)
                if not np.all(as_int == values):
                    problems.append(f"{name}: expected integers (got {values.tolist()})")
                elif np.unique(as_int).size != as_int.size:
                    problems.append(f"{name}: expected distinct values (got {values.tolist()})")
                set_(name, as_int)
        grid = (n_cuts, n_ranks)
        for name in ("client_forward_flops", "client_backward_flops", "server_flops",
                     "client_adapter_bytes"):
            set_(name, as_array(problems, name, getattr(self, name), grid, lower=0.0))
        for name in ("activation_bytes", "gradient_bytes"):
            set_(name, as_array(problems, name, getattr(self, name), (n_cuts,), lower=0.0))
        if problems:
            raise ValueError("invalid CostTable:\n" + "\n".join(problems))

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(C, Rk)``: number of candidate cuts and ranks."""
        return (self.cuts.size, self.ranks.size)


@dataclass(frozen=True, eq=False, kw_only=True)
class Problem:
    """One instance of the joint subchannel / power / cut / rank problem (FedsLLM).

    K clients share N main-set uplink subchannels (activations, and the adapters
    when ``M == 0``) and optionally M federated-server subchannels (adapters).
    Each subchannel serves at most one client; every client needs at least one
    subchannel of each set in use. Rates are Shannon rates
    ``B_n log2(1 + p_{k,n} g_{k,n} / noise_n)``.

    Parameters
    ----------
    costs : CostTable
        Profiled FLOPs and bytes per candidate cut and rank.
    rounds_to_target : (Rk,) float
        Communication rounds to reach the target loss with each rank of
        ``costs.ranks`` (from measured convergence); multiplies the round delay.
    bandwidth_hz : (N,) float or scalar, Hz
        Bandwidth of each main-set subchannel.
    gain_lin : (K, N) float, linear
        Power gain, large scale x small scale (``beta_k |h_{k,n}|^2``).
    noise_power_w : (N,) float or scalar, W
        Noise power in each subchannel (``N0 B_n``).
    device_flops_per_s : (K,) float, FLOP/s
        Effective compute of each client.
    server_flops_per_s : float, FLOP/s
        Effective compute of the main server, given whole to each client (the
        model has no queueing; the simulator does queue).
    downlink_rate_bps : (K,) float or scalar, bit/s
        Rate of the gradient downlink (not optimised).
    max_power_w : (K,) float or scalar, W
        Per-device transmit power limit; applies to each set separately (the
        activation uplink and the adapter upload happen at different times).
    local_iterations : int
        Local iterations I per round.
    total_power_w : float, optional, W
        Limit on the sum of all clients' power on the main set.
    fed_bandwidth_hz, fed_gain_lin, fed_noise_power_w : optional
        The M federated-server subchannels, shaped ``(M,)``, ``(K, M)``, ``(M,)``.
    fed_total_power_w : float, optional, W
        Limit on the sum of all clients' power on the federated set.
    device_j_per_flop : (K,) float or scalar, optional, J
        Compute energy per FLOP of each device (None: compute energy not counted).
    circuit_power_w : (K,) float or scalar, W
        Power the device's transmitter circuits draw while it sends (0 by default).
    energy_budget_j : (K,) float or scalar, optional, J
        Per-device energy budget per round (compute + transmit), honoured by
        :func:`solver.solve` and :func:`solver.brute_force` (:mod:`solver.energy`);
        the baselines only report their energy.
    """

    costs: CostTable
    rounds_to_target: np.ndarray
    bandwidth_hz: np.ndarray
    gain_lin: np.ndarray
    noise_power_w: np.ndarray
    device_flops_per_s: np.ndarray
    server_flops_per_s: float
    downlink_rate_bps: np.ndarray
    max_power_w: np.ndarray
    local_iterations: int
    total_power_w: float | None = None
    fed_bandwidth_hz: np.ndarray | None = None
    fed_gain_lin: np.ndarray | None = None
    fed_noise_power_w: np.ndarray | None = None
    fed_total_power_w: float | None = None
    device_j_per_flop: np.ndarray | None = None
    circuit_power_w: np.ndarray = 0.0
    energy_budget_j: np.ndarray | None = None
    snr_per_w: np.ndarray = field(init=False, repr=False)
    fed_snr_per_w: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if not isinstance(self.costs, CostTable):
            raise ValueError(f"costs: expected a CostTable (got {type(self.costs).__name__})")
        gain = np.asarray(self.gain_lin, dtype=float)
        if gain.ndim != 2 or 0 in gain.shape:
            raise ValueError(f"gain_lin: expected a (K, N) array with K, N >= 1 (got shape {gain.shape})")
        k, n = gain.shape
        problems: list[str] = []
        set_("gain_lin", as_array(problems, "gain_lin", gain, (k, n), lower=0.0, strict=True))
        set_("rounds_to_target", as_array(problems, "rounds_to_target", self.rounds_to_target,
                                          (self.costs.ranks.size,), lower=0.0, strict=True))
        for name, shape in (("bandwidth_hz", (n,)), ("noise_power_w", (n,)),
                            ("device_flops_per_s", (k,)), ("downlink_rate_bps", (k,)),
                            ("max_power_w", (k,)), ("server_flops_per_s", ())):
            value = as_array(problems, name, getattr(self, name), shape, lower=0.0, strict=True)
            set_(name, float(value) if shape == () else value)
        set_("local_iterations", check_int(problems, "local_iterations", self.local_iterations, lower=1))
        for name in ("total_power_w", "fed_total_power_w"):
            set_(name, check_optional_positive(problems, name, getattr(self, name)))
        set_("circuit_power_w", as_array(problems, "circuit_power_w", self.circuit_power_w, (k,), lower=0.0))
        for name in ("device_j_per_flop", "energy_budget_j"):
            if getattr(self, name) is not None:
                set_(name, as_array(problems, name, getattr(self, name), (k,), lower=0.0,
                                    strict=name == "energy_budget_j"))
        fed = (self.fed_bandwidth_hz, self.fed_gain_lin, self.fed_noise_power_w)
        if all(part is None or np.size(part) == 0 for part in fed):  # empty: M = 0 (dataclasses.replace)
            m = 0
            if self.fed_total_power_w is not None:
                problems.append("fed_total_power_w: expected None when there is no federated set "
                                f"(got {self.fed_total_power_w!r})")
        elif any(part is None for part in fed):
            problems.append("fed_bandwidth_hz, fed_gain_lin, fed_noise_power_w: expected all three "
                            "or none (got " + ", ".join("None" if p is None else "a value" for p in fed) + ")")
            m = 0
        else:
            fed_gain = np.asarray(self.fed_gain_lin, dtype=float)
            m = fed_gain.shape[1] if fed_gain.ndim == 2 else 0
            set_("fed_gain_lin", as_array(problems, "fed_gain_lin", fed_gain, (k, m), lower=0.0, strict=True))
            if m == 0:
                problems.append(f"fed_gain_lin: expected a (K, M) array with M >= 1 (got shape {fed_gain.shape})")
            for name in ("fed_bandwidth_hz", "fed_noise_power_w"):
                set_(name, as_array(problems, name, getattr(self, name), (m,), lower=0.0, strict=True))
        if m == 0:
            for name in ("fed_bandwidth_hz", "fed_noise_power_w"):
                set_(name, np.zeros(0))
            set_("fed_gain_lin", np.zeros((k, 0)))
        if problems:
            raise ValueError("invalid Problem:\n" + "\n".join(problems))
        snr = self.gain_lin / self.noise_power_w
        fed_snr = self.fed_gain_lin / self.fed_noise_power_w if m else np.zeros((k, 0))
        for name, value in (("snr_per_w", snr), ("fed_snr_per_w", fed_snr)):
            value.setflags(write=False)
            set_(name, value)

    @property
    def num_clients(self) -> int:
        """K, the number of clients."""
        return self.gain_lin.shape[0]

    @property
    def num_subchannels(self) -> int:
        """N, the number of main-set subchannels."""
        return self.gain_lin.shape[1]

    @property
    def num_fed_subchannels(self) -> int:
        """M, the number of federated-set subchannels (0: adapters use the main set)."""
        return self.fed_gain_lin.shape[1]

    def cut_index(self, cut: int) -> int:
        """Index of ``cut`` in ``costs.cuts``; ``ValueError`` if not a candidate."""
        return _index_of("cut", cut, self.costs.cuts)

    def rank_index(self, rank: int) -> int:
        """Index of ``rank`` in ``costs.ranks``; ``ValueError`` if not a candidate."""
        return _index_of("rank", rank, self.costs.ranks)


def _index_of(name: str, value, candidates: np.ndarray) -> int:
    hits = np.flatnonzero(candidates == value) if np.isscalar(value) else np.array([])
    if hits.size != 1:
        raise ValueError(f"{name}: expected one of {candidates.tolist()} (got {value!r})")
    return int(hits[0])


def require_feasible(problem: Problem) -> None:
    """Raise ``InfeasibleError`` when no assignment can give every client a subchannel.

    Every client needs at least one main-set subchannel (``K <= N``) and, when the
    federated set exists, at least one of those too (``K <= M``). Once each client
    holds a subchannel, any round delay is reachable with enough time, so these are
    the only infeasibilities of the problem.
    """
    k, n, m = problem.num_clients, problem.num_subchannels, problem.num_fed_subchannels
    if k > n:
        raise InfeasibleError(
            f"subchannel constraint: every client needs at least one main-set subchannel, "
            f"but there are K={k} clients and only N={n} subchannels")
    if 0 < m < k:
        raise InfeasibleError(
            f"federated subchannel constraint: every client needs at least one federated-set "
            f"subchannel, but there are K={k} clients and only M={m} subchannels")
