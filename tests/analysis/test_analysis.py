"""cosim.analysis: hand-built traces with hand-computed answers, then the invariants on a real tiny run."""

import math

import numpy as np
import pandas as pd
import pytest

from cosim.analysis import (wilson_interval, accuracy_vs_time, bytes_by_direction, client_round_delay, critical_path, load_run,
                     phase_time_per_client, round_critical_paths)


def _events(rows):
    """(round, client, kind, t_start_s, t_end_s, bytes) rows -> an events table like events.parquet's."""
    df = pd.DataFrame(rows, columns=["round", "client", "kind", "t_start_s", "t_end_s", "bytes"])
    df["duration_s"] = df["t_end_s"] - df["t_start_s"]
    df["kind"] = df["kind"].astype("string")
    df["loss"] = np.nan
    return df


# Round 0, split learning, 2 clients (client 1 is slower and waits 1 s for the server), then the
# federated server (-1). Round 1 (from 12 s), a federated-LoRA shape with a kind no one knows yet.
HAND = _events([
    (0, 0, "client_forward", 0, 1, 0), (0, 0, "uplink", 1, 3, 100), (0, 0, "server_step", 3, 4, 0),
    (0, 0, "downlink", 4, 5, 50), (0, 0, "client_backward", 5, 6, 0), (0, 0, "adapter_upload", 6, 7, 10),
    (0, 1, "client_forward", 0, 2, 0), (0, 1, "uplink", 2, 3, 100), (0, 1, "server_queue", 3, 4, 0),
    (0, 1, "server_step", 4, 5, 0), (0, 1, "downlink", 5, 8, 50), (0, 1, "client_backward", 8, 9, 0),
    (0, 1, "adapter_upload", 9, 10, 10), (0, -1, "aggregate", 10, 10.5, 10),
    (0, 0, "broadcast", 10.5, 11, 10), (0, 1, "broadcast", 10.5, 12, 10),
    (1, 0, "local_step", 12, 14, 0), (1, 0, "adapter_upload", 14, 15, 20),
    (1, 1, "local_step", 12, 13, 0), (1, 1, "adapter_upload", 13, 16, 20), (1, 1, "mystery", 16, 16.5, 0),
    (1, -1, "aggregate", 16.5, 17, 20), (1, 0, "broadcast", 17, 17.5, 20), (1, 1, "broadcast", 17, 18, 20),
])
HAND_ROUNDS = pd.DataFrame({"round": [0, 1], "t_start_s": [0.0, 12.0], "t_end_s": [12.0, 18.0],
                            "duration_s": [12.0, 6.0], "accuracy": [np.nan, 0.7], "eval_loss": [np.nan, 0.9]})


def test_round_critical_paths_follow_the_slowest_chain_of_each_round():
    paths = round_critical_paths(HAND, HAND_ROUNDS)
    got = [(r, c, k) for r, c, k in zip(paths["round"], paths["client"], paths["kind"])]
    assert got == [
        (0, 1, "client_forward"), (0, 1, "uplink"), (0, 1, "server_queue"), (0, 1, "server_step"),
        (0, 1, "downlink"), (0, 1, "client_backward"), (0, 1, "adapter_upload"), (0, -1, "aggregate"),
        (0, 1, "broadcast"),
        (1, 1, "local_step"), (1, 1, "adapter_upload"), (1, 1, "mystery"), (1, -1, "aggregate"),
        (1, 1, "broadcast"),
    ]
    assert paths.groupby("round")["duration_s"].sum().tolist() == [12.0, 6.0]
    pd.testing.assert_frame_equal(paths, HAND.loc[paths.index])        # the caller's row labels
    # without the rounds table each round starts at its earliest event: the same paths
    pd.testing.assert_frame_equal(round_critical_paths(HAND), paths)
    # and the whole-run path is the two rounds' paths end to end
    assert critical_path(HAND)["duration_s"].sum() == 18.0
    assert list(critical_path(HAND)["kind"]) == list(paths["kind"])


def test_a_round_whose_chain_breaks_is_an_error():
    gap = HAND[~((HAND["round"] == 1) & (HAND["kind"] == "mystery"))]   # 16 -> 16.5 s: nothing recorded
    with pytest.raises(ValueError, match="aggregate starting at 16.5"):
        round_critical_paths(gap, HAND_ROUNDS)


def test_phase_time_per_client_by_hand():
    table = phase_time_per_client(HAND)
    assert list(table.columns) == ["client_forward", "uplink", "server_step", "downlink", "client_backward",
                                   "adapter_upload", "server_queue", "aggregate", "broadcast", "local_step",
                                   "mystery"]
    assert table.loc[1].to_dict() == {
        "client_forward": 2, "uplink": 1, "server_step": 1, "downlink": 3, "client_backward": 1,
        "adapter_upload": 1 + 3, "server_queue": 1, "aggregate": 0, "broadcast": 1.5 + 1, "local_step": 1,
        "mystery": 0.5}
    assert table.loc[0, "local_step"] == 2 and table.loc[0, "broadcast"] == 1.0
    assert table.loc[-1].sum() == 1.0 and table.loc[-1, "aggregate"] == 1.0
    by_round = phase_time_per_client(HAND, by_round=True)
    assert by_round.index.names == ["round", "client"]
    assert by_round.loc[(1, 1), "adapter_upload"] == 3 and by_round.loc[(0, 1), "local_step"] == 0
    pd.testing.assert_frame_equal(by_round.groupby("client").sum(), table)


def test_bytes_by_direction_by_hand():
    per_round = bytes_by_direction(HAND)
    assert per_round.to_dict("index") == {0: {"uplink_bytes": 220, "downlink_bytes": 120},
                                          1: {"uplink_bytes": 40, "downlink_bytes": 40}}
    per_client = bytes_by_direction(HAND, by_client=True)
    assert per_client.loc[(0, 0)].tolist() == [110, 60] and per_client.loc[(1, 1)].tolist() == [20, 20]
    assert per_client.loc[(0, -1)].tolist() == [0, 0]                  # aggregate bytes are not radio traffic
    assert per_client.dtypes.eq("int64").all()


def test_client_round_delay_by_hand():
    delays = client_round_delay(HAND, HAND_ROUNDS)
    assert delays.values.tolist() == [[0, 0, 7.0], [0, 1, 10.0], [1, 0, 3.0], [1, 1, 4.0]]


def test_accuracy_vs_time_puts_before_at_zero_and_after_at_the_end_once():
    summary = {"total_time_s": 18.0, "before": {"accuracy": 0.5, "loss": 2.0, "n": 8},
               "after": {"accuracy": 0.7, "loss": 0.9, "n": 8}}
    cols = ["round", "time_s", "accuracy", "loss"]
    got = accuracy_vs_time(HAND_ROUNDS, summary)
    assert got[cols].values.tolist() == [[-1, 0.0, 0.5, 2.0], [1, 18.0, 0.7, 0.9]]  # last round evaluated: once
    assert got["n"].tolist() == [8, 8]
    assert got[["accuracy_lo", "accuracy_hi"]].values.tolist() == [list(wilson_interval(0.5, 8)),
                                                                   list(wilson_interval(0.7, 8))]
    not_evaluated = HAND_ROUNDS.assign(accuracy=np.nan, eval_loss=np.nan)
    got = accuracy_vs_time(not_evaluated, summary)
    assert got[cols].values.tolist() == [[-1, 0.0, 0.5, 2.0], [1, 18.0, 0.7, 0.9]]  # from the summary
    assert accuracy_vs_time(not_evaluated).empty
    assert accuracy_vs_time(HAND_ROUNDS)[["round", "time_s", "accuracy"]].values.tolist() == [[1, 18.0, 0.7]]


def test_wilson_interval_against_hand_computed_values():
    # p = 0.727 of n = 128 (the quickstart's accuracy): centre (p + z^2/2n) / (1 + z^2/n) = 0.72040,
    # half-width z / (1 + z^2/n) sqrt(p (1-p) / n + z^2 / 4n^2) = 0.07633.
    lo, hi = wilson_interval(0.727, 128)
    assert (lo, hi) == pytest.approx((0.72040 - 0.07633, 0.72040 + 0.07633), abs=2e-5)
    # p = 0: the interval is [0, z^2 / (n + z^2)], not the normal interval's [0, 0].
    lo, hi = wilson_interval(0.0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(1.959964 ** 2 / (10 + 1.959964 ** 2))
    assert all(math.isnan(v) for v in wilson_interval(0.5, 0))


# --- a real tiny run --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tiny_run):
    return load_run(tiny_run)


def test_per_round_critical_paths_sum_to_the_round_durations(run):
    events, rounds, clients, summary = run
    paths = round_critical_paths(events, rounds)
    sums = paths.groupby("round")["duration_s"].sum()
    assert len(rounds) == 4
    np.testing.assert_allclose(sums.to_numpy(), rounds["duration_s"].to_numpy(), rtol=1e-9)
    # per kind, the rounds' paths add up to the whole-run critical path the summary reports
    per_kind = paths.groupby(paths["kind"].astype(str))["duration_s"].sum()
    assert per_kind.to_dict() == pytest.approx(summary["phase_time_s"], rel=1e-9, abs=1e-15)


def test_bytes_by_direction_match_the_rounds_table(run):
    events, rounds, clients, summary = run
    per_round = bytes_by_direction(events)
    assert per_round["uplink_bytes"].tolist() == rounds["uplink_bytes"].tolist()
    assert per_round["downlink_bytes"].tolist() == rounds["downlink_bytes"].tolist()
    assert per_round.sum().tolist() == [summary["uplink_bytes"], summary["downlink_bytes"]]
    per_client = bytes_by_direction(events, by_client=True)
    assert (per_client.groupby("round").sum().to_numpy() == per_round.to_numpy()).all()


def test_busy_time_per_client_adds_up_to_the_summary(run):
    events, rounds, clients, summary = run
    table = phase_time_per_client(events)
    assert sorted(table.index) == [-1, 0, 1, 2]
    assert table.sum().to_dict() == pytest.approx(summary["phase_busy_s"], rel=1e-12)
    assert "server_queue" in table.columns                          # three clients, one server slot


def test_client_round_delay_and_accuracy_on_the_real_run(run):
    events, rounds, clients, summary = run
    delays = client_round_delay(events, rounds)
    assert len(delays) == 4 * 3 and (delays["delay_s"] > 0).all()
    slowest = delays.groupby("round")["delay_s"].max().to_numpy()
    assert (slowest < rounds["duration_s"].to_numpy()).all()        # the aggregate and broadcast come after
    assert len(clients) == len(delays)                               # load_run gives the per-client table
    merged = delays.merge(clients, on=["round", "client"])
    np.testing.assert_allclose(merged["delay_s"], merged["latency_s"], rtol=1e-12)
    acc = accuracy_vs_time(rounds, summary)
    assert acc["round"].tolist() == [-1, 1, 3]                      # before, then eval_every=2
    assert acc["time_s"].tolist() == [0.0, rounds["t_end_s"].iloc[1], rounds["t_end_s"].iloc[3]]
    assert acc["accuracy"].iloc[0] == summary["before"]["accuracy"]
    assert acc["accuracy"].iloc[-1] == summary["after"]["accuracy"]
    assert not math.isnan(acc["loss"].iloc[-1])
