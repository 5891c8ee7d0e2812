"""Federated LoRA without a split in the simulator: FedLoRA, SOFT, top-k, random-k, TSFA."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cosim.cli import main
from cosim.run import run_scenario
from cosim.scenario import load_scenario
from cosim.workloads.fed_lora import FedLoRAWorkload, module_shapes, regulariser_flops
from llm_split.ortho import lora_pairs
from cosim.analysis import load_run

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
TINY = ["model.name=tiny-llama", "data.test_size=8", "data.max_train=40", "training.seq_len=32",
        "training.rounds=2", "training.local_iterations=2", "clients.count=3", "compute.client_flops_per_s=1e9",
        "split.cut_layer=1", "lora.rank=4"]
STATIC = ["channel.fading=none", "channel.shadowing_std_db=0", "clients.placement=fixed",
          "clients.distances_m=[100, 200, 300]"]


def scenario(*overrides):
    return load_scenario(QUICKSTART, overrides=[*TINY, *overrides])


def run(sc, tmp_path, name):
    workload = FedLoRAWorkload.from_scenario(sc)
    summary = run_scenario(sc, tmp_path / name, workload=workload)
    return load_run(tmp_path / name), summary, workload


@pytest.fixture(scope="module")
def dense_and_soft0(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fed")
    dense = run(scenario("strategy.name=fedlora"), tmp, "dense")
    soft0 = run(scenario("strategy.name=soft", "strategy.sparsity=0", "strategy.ortho_weight=0"), tmp, "soft0")
    return dense, soft0


def test_soft_with_rho_0_is_dense_fedlora_bit_for_bit(dense_and_soft0):
    (d_run, d_sum, d_w), (s_run, s_sum, s_w) = dense_and_soft0
    pd.testing.assert_frame_equal(d_run.events, s_run.events)
    pd.testing.assert_frame_equal(d_run.clients, s_run.clients)
    gd, gs = d_w.global_state(), s_w.global_state()
    assert gd.keys() == gs.keys() and all(torch.equal(gd[k], gs[k]) for k in gd)
    assert d_sum["after"] == s_sum["after"]


def test_dense_round_shape_and_bytes(dense_and_soft0):
    (r, summary, w), _ = dense_and_soft0
    ev = r.events
    assert set(ev["kind"]) == {"local_step", "adapter_upload", "aggregate", "broadcast"}
    dense = w.dense_nbytes()
    # the dense adapter is every LoRA factor of the whole model, float32
    assert dense == sum(4 * rank * (d_in + d_out) for rank, d_in, d_out in module_shapes(w.global_state()))
    up = ev[ev.kind == "adapter_upload"]
    assert (up["bytes"] == dense).all() and len(up) == 2 * 3
    assert summary["uplink_bytes"] == 2 * 3 * dense
    steps = ev[ev.kind == "local_step"]
    assert len(steps) == 2 * 3 * 2 and steps["flops"].nunique() == 1
    # a local step costs the whole model's split step (the three phases, measured), nothing else
    f = w.trainer.step_flops(w.data.encoder.encode(list(w.data.task.train_texts[:4]), w.data.task.train_labels[:4]))
    assert steps["flops"].iloc[0] == f.client_forward + f.server_forward_backward + f.client_backward
    assert np.allclose(steps["duration_s"], steps["flops"] / 1e9, rtol=1e-12)
    # every client's round latency = its compute + its upload
    c = r.clients
    assert np.allclose(c["latency_s"], c["compute_s"] + c["adapter_upload_s"], rtol=1e-12)
    assert (r.rounds["sparsity"] == 0).all() and r.rounds["virtual_queue"].isna().all()
    # (the tiny aggregation, ~1e-8 s here, is within the path's time tolerance)
    assert summary["critical_path_time_s"] == pytest.approx(summary["total_time_s"], rel=1e-8)


def test_soft_upload_bytes_are_the_kept_components_plus_indices(tmp_path):
    sc = scenario("strategy.name=soft", "strategy.sparsity=0.5", "training.rounds=1", "training.local_iterations=1",
                  *STATIC)
    r, summary, w = run(sc, tmp_path, "soft")
    shapes = module_shapes(w.global_state())
    keep = math.ceil(0.5 * 4)  # r = 4: two components, each index 2 bits
    expected = sum(keep * (d_in + d_out) * 4 + math.ceil(keep * 2 / 8) for _, d_in, d_out in shapes)
    up = r.events[r.events.kind == "adapter_upload"]
    assert (up["bytes"] == expected).all()
    assert np.allclose(r.clients["sparsity"], 1 - keep * sum(d_i + d_o for _, d_i, d_o in shapes)
                       / sum(4 * (d_i + d_o) for _, d_i, d_o in shapes))
    # static channel: the upload lasts bits / rate, the rate of the client's own subchannels
    assert np.allclose(up["duration_s"], 8 * up["bytes"] / up["rate_bps"], rtol=1e-9)
    # the regulariser's FLOPs are counted on top of the step
    steps = r.events[r.events.kind == "local_step"]
    assert steps["flops"].iloc[0] > 0 and regulariser_flops(w.global_state()) > 0


def test_topk_and_randomk_send_the_same_bytes_and_randomk_is_reproducible(tmp_path):
    common = ["strategy.sparsity=0.75", "training.rounds=1", "training.local_iterations=1"]
    top, _, _ = run(scenario("strategy.name=topk", *common), tmp_path, "top")
    rnd, _, _ = run(scenario("strategy.name=randomk", *common), tmp_path, "rnd")
    rnd2, _, _ = run(scenario("strategy.name=randomk", *common), tmp_path, "rnd2")
    up = lambda r: r.events[r.events.kind == "adapter_upload"]["bytes"].to_numpy()  # noqa: E731
    assert (up(top) == up(rnd)).all()
    pd.testing.assert_frame_equal(rnd.events, rnd2.events)
    assert rnd.summary["after"] == rnd2.summary["after"]


def test_tsfa_queue_follows_its_rule_and_decisions_are_traced(tmp_path):
    budget = 3.43
    sc = scenario("strategy.name=tsfa", f"tsfa.latency_budget_s={budget}", "tsfa.rank=4", "training.rounds=3",
                  "training.local_iterations=2")
    r, summary, _ = run(sc, tmp_path, "tsfa")
    rounds, clients = r.rounds, r.clients
    q = 0.0
    for _, row in rounds.iterrows():
        assert (clients[clients["round"] == row["round"]]["virtual_queue"] == q).all()  # Q seen at the start
        q = max(q + row["duration_s"] - budget, 0.0)
        assert row["virtual_queue"] == pytest.approx(q, abs=1e-12)
    assert (rounds["rank"] == 4).all() and rounds["cut"].isna().all()
    decisions = summary["strategy"]["tsfa"]["decisions"]
    assert len(decisions) == 3
    for d in decisions:
        assert sum(d["subchannels"]) == sc.channel.n_subchannels and min(d["subchannels"]) >= 1
        assert all(sc.tsfa.sparsity_min <= x <= sc.tsfa.sparsity_max for x in d["sparsity"])
    n_sub = clients.sort_values(["round", "client"])["n_subchannels"].to_numpy().reshape(3, 3)
    assert (n_sub == np.array([d["subchannels"] for d in decisions])).all()


def test_tsfa_predicts_the_round_it_plans_on_a_static_channel(tmp_path):
    # No fading: what the base station sees is what happens. A loose budget keeps the queue
    # empty, so every upload is dense and the predicted round is the realised one.
    sc = scenario("strategy.name=tsfa", "tsfa.latency_budget_s=100", "tsfa.rank=4", "training.rounds=2", *STATIC)
    r, summary, _ = run(sc, tmp_path, "tsfa")
    assert (r.rounds["sparsity"] == 0).all()
    np.testing.assert_allclose(r.rounds["predicted_s"], r.rounds["duration_s"], rtol=1e-9)
    # A budget it cannot keep dense: the queue grows, uploads are sparsified (whole rank
    # components, as predicted), and the prediction misses only the bytes of their indices.
    # Fast devices on 6 subchannels: the uploads are most of the round (0.127 s dense).
    sc = scenario("strategy.name=tsfa", "tsfa.latency_budget_s=0.076", "tsfa.rank=4", "training.rounds=3",
                  "tsfa.v=1e-4", "compute.client_flops_per_s=1e12", "channel.n_subchannels=6", *STATIC)
    r, summary, _ = run(sc, tmp_path, "tight")
    decided = [d["sparsity"] for d in summary["strategy"]["tsfa"]["decisions"]]
    assert decided[1] == pytest.approx([0.9] * 3) and (r.clients[r.clients["round"] == 1].sparsity == 0.75).all()
    np.testing.assert_allclose(r.rounds["predicted_s"], r.rounds["duration_s"], rtol=1e-3)


def test_tsfa_needs_a_budget_and_fed_strategies_refuse_solver_policies(tmp_path, capsys):
    assert main(["validate", str(QUICKSTART), "--set", "strategy.name=tsfa"]) == 2
    assert "tsfa.latency_budget_s" in capsys.readouterr().err
    assert main(["validate", str(QUICKSTART), "--set", "strategy.name=soft", "--set",
                 "allocation.policy=random"]) == 2
    err = capsys.readouterr().err
    assert "allocation.policy" in err and "Traceback" not in err


def test_an_unreachable_tsfa_budget_is_one_clear_error(tmp_path, capsys):
    args = ["run", str(QUICKSTART), "--quiet", "--out", str(tmp_path / "x"), "--set", "strategy.name=tsfa",
            "--set", "tsfa.latency_budget_s=0.001", "--set", "tsfa.rank_candidates=[2, 4]"]
    for o in TINY:
        args += ["--set", o]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "tsfa.latency_budget_s" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_product_aggregation_keeps_a_single_clients_update(tmp_path):
    sc = scenario("strategy.name=fedlora", "strategy.aggregation=product", "clients.count=1",
                  "clients.distances_m=[100]", "compute.client_flops_per_s=1e9", "training.rounds=1",
                  "training.local_iterations=2")
    w = FedLoRAWorkload.from_scenario(sc)
    for _ in range(2):
        w.local_step(0).run()
    local = w._state(0)
    w.upload(0, 0.0)
    cost = w.aggregate({0: 1.0}).run()
    assert cost.nbytes == w.dense_nbytes() and cost.flops > 0
    new = w.global_state()
    for a_key, b_key in lora_pairs(new).values():
        before = local[b_key].double() @ local[a_key].double()
        after = new[b_key].double() @ new[a_key].double()
        assert torch.allclose(after, before, atol=1e-6 * max(1.0, before.abs().max().item()))
    assert not all(torch.equal(new[k], local[k]) for k in new)   # re-factored, not copied
