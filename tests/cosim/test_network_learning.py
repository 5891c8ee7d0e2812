"""The network decides what is learned, on a real (tiny, random) Llama: proofs that could fail.

- deadline: the round's aggregate is FedAvg, by hand, of exactly the on-time clients' uploaded adapters;
- SFL-V2: the shared server adapter is what the server steps give run outside the simulator in the
  trace's order, and another order gives another adapter;
- SL: the client-side adapter is handed from client to client, turns never overlap;
- FedAsync: the global adapter is the staleness-weighted mixing of the uploads, by hand.
"""

from pathlib import Path

import pytest
import torch

from cosim.build import build_simulation
from cosim.scenario import load_scenario
from cosim.workloads.split_lora import SplitLoRAWorkload

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
TINY = ["model.name=tiny-llama", "split.cut_layer=2", "clients.count=3", "training.rounds=1",
        "training.local_iterations=2", "training.seq_len=32", "data.test_size=8", "data.max_train=60",
        "compute.client_flops_per_s=[0.5e9, 1e9, 2e9]", "training.lr=0.01", "clients.placement=fixed",
        "clients.distances_m=[100, 250, 400]"]


def scenario(*overrides):
    return load_scenario(QUICKSTART, overrides=[*TINY, *overrides])


class Snapshots(SplitLoRAWorkload):
    """Keeps a copy of every adapter as uploaded (what the federated server receives)."""

    uploaded: dict

    def adapter_upload(self, client):
        self.uploaded = getattr(self, "uploaded", {})
        self.uploaded[client] = self._state(client)
        return super().adapter_upload(client)


def simulate(sc, cls=SplitLoRAWorkload):
    wl = cls.from_scenario(sc)
    fed = build_simulation(sc, wl)
    fed.run()
    return fed, wl, fed.sim.rec.events(), fed.sim.rec.clients()


def by_hand_fedavg(states, weights):
    total = sum(weights)
    return {key: sum(w * s[key].double() for s, w in zip(states, weights)) / total for key in states[0]}


@pytest.fixture(scope="module")
def upload_ends():
    fed, wl, ev, _ = simulate(scenario())
    up = ev[ev.kind == "adapter_upload"].set_index("client")
    return up.t_end_s.to_dict(), up.t_start_s.to_dict()


def test_deadline_average_is_fedavg_of_exactly_the_on_time_uploads(upload_ends):
    ends, starts = upload_ends
    order = sorted(ends, key=ends.get)
    # in the middle of the last client's upload (after the second client's upload ended)
    deadline = (max(starts[order[2]], ends[order[1]]) + ends[order[2]]) / 2
    on_time = sorted(order[:2])
    sc = scenario("aggregation.mode=deadline", f"aggregation.deadline_s={deadline}")
    fed, wl, ev, clients = simulate(sc, Snapshots)
    assert sorted(clients[clients.status == "aggregated"].client) == on_time
    assert order[2] in wl.uploaded  # the late client had started its upload: it is cut mid-transfer
    assert bool(ev[(ev.client == order[2]) & (ev.kind == "adapter_upload")].cut.iloc[0])
    n = wl.sample_counts()
    expect = by_hand_fedavg([wl.uploaded[k] for k in on_time], [n[k] for k in on_time])
    got = wl.global_state()
    assert got.keys() == expect.keys()
    for key in got:
        torch.testing.assert_close(got[key].double(), expect[key], rtol=0, atol=1e-6)
    # ... and not the average with the late client in it (so the check can fail)
    everyone = by_hand_fedavg([wl.uploaded[k] for k in range(3)], n)
    assert max((got[key].double() - everyone[key]).abs().max().item() for key in got) > 1e-4
    # every client, the cut one too, holds the new global adapter after the broadcast
    for k in range(3):
        state = wl._state(k)
        assert all(torch.equal(state[key], got[key]) for key in got)


def test_sfl_v2_shared_adapter_is_the_server_steps_in_trace_order():
    sc = scenario("strategy.name=sfl_v2", "channel.fading=rayleigh", "training.local_iterations=3")
    fed, wl, ev, _ = simulate(sc)
    steps = ev[ev.kind.isin(["client_forward", "server_step", "client_backward"])].sort_values("t_end_s",
                                                                                              kind="stable")
    server_order = list(steps[steps.kind == "server_step"].client)
    assert server_order != sorted(server_order)          # the network interleaved the clients

    def replay(order):
        """Every step run outside the simulator, in ``order`` (kinds and clients), on a fresh workload."""
        w = SplitLoRAWorkload.from_scenario(sc)
        for kind, k in order:
            getattr(w, kind)(k).run()
        return w.trainer.server_adapter_state(0)

    trace_order = list(zip(steps.kind, steps.client))
    sim_state = wl.trainer.server_adapter_state(0)
    again = replay(trace_order)
    assert all(torch.equal(sim_state[key], again[key]) for key in sim_state)
    # move a later client's server step before an earlier one's (its forward already ran): another order
    servers = [j for j, (kind, _) in enumerate(trace_order) if kind == "server_step"]
    forward_at = {}
    for j, (kind, k) in enumerate(trace_order):
        forward_at.setdefault((kind, k, sum(1 for x in trace_order[:j] if x == (kind, k))), j)
    a, b = next((a, b) for a in servers for b in servers if a < b and trace_order[a][1] != trace_order[b][1]
                and forward_at[("client_forward", trace_order[b][1],
                                sum(1 for x in trace_order[:b] if x == trace_order[b]))] < a)
    swapped = list(trace_order)
    swapped.insert(a, swapped.pop(b))
    other = replay(swapped)
    assert any(not torch.equal(sim_state[key], other[key]) for key in sim_state)
    # only the client side is averaged: one server-side adapter, untouched by the aggregation
    assert not any(key.startswith("server.") for key in wl.global_state())


def test_sl_hands_the_client_adapter_on_and_turns_never_overlap():
    sc = scenario("strategy.name=sl")
    fed, wl, ev, clients = simulate(sc)
    work = ev[ev.client >= 0].sort_values("t_start_s", kind="stable")
    turns = [g for _, g in work.groupby("client")]
    spans = sorted((g.t_start_s.min(), g.t_end_s.max(), k) for k, g in work.groupby("client"))
    for (a0, a1, _), (b0, b1, _) in zip(spans, spans[1:]):
        assert a1 <= b0 + 1e-12
    assert len(turns) == 3 and set(clients.status) == {"aggregated"}
    # clients after the first fetch the adapter the previous client uploaded
    downloads = ev[ev.kind == "model_download"]
    assert sorted(downloads.client) == [1, 2]
    assert (ev.kind == "aggregate").sum() == 0 and (ev.kind == "broadcast").sum() == 0
    # outside the simulator: client 0's steps, hand the adapter to client 1, its steps, to client 2...
    w = SplitLoRAWorkload.from_scenario(sc)
    for k in range(3):
        if k:
            w.trainer.set_client_adapter_state(k, w.trainer.client_adapter_state(k - 1))
        for _ in range(2):
            for kind in ("client_forward", "server_step", "client_backward"):
                getattr(w, kind)(k).run()
    expect, got = w.trainer.client_adapter_state(2), wl.trainer.client_adapter_state(0)
    assert all(torch.equal(expect[key], got[key]) for key in got)


def test_fedasync_global_is_the_staleness_weighted_mix_of_uploads():
    sc = scenario("aggregation.mode=fedasync", "training.rounds=5", "aggregation.alpha=0.5")

    class Mixes(SplitLoRAWorkload):
        def mix(self, client, weight):
            self.mixed = getattr(self, "mixed", [])
            self.mixed.append((self._state(client), weight))
            return super().mix(client, weight)

    wl = Mixes.from_scenario(sc)
    start = {key: t.clone() for key, t in wl.versions.global_state.items()}
    fed = build_simulation(sc, wl)
    fed.run()
    clients = fed.sim.rec.clients()
    taken = clients[clients.status == "aggregated"]
    assert len(taken) == len(wl.mixed) == 5
    g = {key: t.double() for key, t in start.items()}
    for v, ((state, weight), (_, row)) in enumerate(zip(wl.mixed, taken.iterrows())):
        tau = v - row.base_version
        assert weight == pytest.approx(0.5 * (1 + tau) ** -0.5, rel=1e-15) and row.staleness == tau
        g = {key: (1 - weight) * g[key] + weight * state[key].double() for key in g}
    got = wl.global_state()
    for key in got:
        torch.testing.assert_close(got[key].double(), g[key], rtol=0, atol=1e-6)
