"""Devices online and offline: from a file and from an on/off process; no event in offline time."""

import numpy as np
import pytest

from cosim.availability import Availability, read_availability_file
from cosim.errors import ScenarioError
from cosim.scenario import scenario_from_dict

from _fake import CountingWorkload, simulate

BASE = {
    "clients": {"count": 3, "placement": "fixed", "distances_m": [100.0, 250.0, 400.0]},
    "channel": {"fading": "none", "shadowing_std_db": 0.0, "n_subchannels": 12},
    "compute": {"client_flops_per_s": [0.5e12, 1e12, 2e12]},
    "training": {"rounds": 4, "local_iterations": 2},
}


def inside(intervals, t0, t1, tol=1e-9):
    return any(a - tol <= t0 and t1 <= b + tol for a, b in intervals)


def test_from_a_file_no_event_in_offline_time_and_a_cut_round_contributes_nothing(tmp_path):
    # Rounds last about 4 s here; client 1 drops out at 0.5 s and is back at 10 s.
    path = tmp_path / "avail.csv"
    path.write_text("client,start_s,end_s\n0,0,inf\n1,0,0.5\n1,10,inf\n2,0,inf\n")
    sc = scenario_from_dict({**BASE, "availability": {"model": "file", "file": str(path)}})
    wl = CountingWorkload(3)
    fed, total, ev, rounds, clients = simulate(sc, wl)
    online = read_availability_file(path, 3)
    for _, e in ev[ev.client >= 0].iterrows():
        assert inside(online[e.client], e.t_start_s, e.t_end_s), e.to_dict()
    r0 = clients[clients["round"] == 0].set_index("client")
    assert r0.loc[1, "status"] == "offline" and r0.loc[[0, 2], "status"].eq("aggregated").all()
    assert ev[(ev.client == 1) & ev.cut].t_end_s.max() == pytest.approx(0.5)
    # round 0's average has clients 0 and 2 only (sample counts 100 and 102): client 1's work is lost
    assert wl.history[0] == ("fedavg", {0: 100.0, 2: 102.0})
    # client 1 sits out every round that starts while it is offline, then catches up with a download
    back = rounds[rounds.t_start_s >= 10.0]
    assert len(back) > 0
    r_back = int(back["round"].iloc[0])
    assert all(1 not in clients[clients["round"] == r].client.values for r in range(1, r_back))
    first = ev[(ev.client == 1) & (ev["round"] == r_back)].sort_values("t_start_s").iloc[0]
    assert first.kind == "model_download"


def test_nobody_online_the_server_waits(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("client,start_s,end_s\n0,5,inf\n1,7,inf\n2,7,inf\n")
    sc = scenario_from_dict({**BASE, "availability": {"model": "file", "file": str(path)}})
    fed, total, ev, rounds, clients = simulate(sc)
    idle = ev[ev.kind == "idle"]
    assert len(idle) == 1 and idle.t_start_s.iloc[0] == 0 and idle.t_end_s.iloc[0] == 5
    assert rounds.t_start_s.iloc[0] == 5 and list(clients[clients["round"] == 0].client) == [0]


def test_the_run_stops_when_nobody_comes_back(tmp_path):
    path = tmp_path / "gone.csv"
    path.write_text("client,start_s,end_s\n0,0,1\n1,0,1\n2,0,1\n")
    sc = scenario_from_dict({**BASE, "availability": {"model": "file", "file": str(path)}})
    fed, total, ev, rounds, clients = simulate(sc)
    assert fed.stopped and "no client is online" in fed.stopped and len(rounds) == 1


def test_on_off_periods_have_their_means_and_own_streams():
    from cosim.seeding import stream

    rngs = [stream(0, "availability", k) for k in range(3)]
    av = Availability.on_off(3, mean_on_s=60.0, mean_off_s=30.0, start="online", rngs=rngs)
    horizon = 200_000.0
    on = [sum(min(b, horizon) - a for a, b in av.online_intervals(k, horizon)) / horizon for k in range(3)]
    assert np.allclose(on, 60 / 90, atol=0.02)                       # stationary share of online time
    lengths = [b - a for a, b in av.online_intervals(0, horizon)]
    assert np.mean(lengths) == pytest.approx(60.0, rel=0.05)
    # adding a device leaves the others' periods as they were
    more = Availability.on_off(4, mean_on_s=60.0, mean_off_s=30.0, start="online",
                               rngs=[stream(0, "availability", k) for k in range(4)])
    assert more.online_intervals(1, 1000.0) == av.online_intervals(1, 1000.0)


def test_on_off_run_no_event_in_offline_time():
    sc = scenario_from_dict({**BASE, "training": {"rounds": 6, "local_iterations": 2},
                             "availability": {"model": "on_off", "mean_on_s": 3.0, "mean_off_s": 2.0}})
    fed, total, ev, rounds, clients = simulate(sc)
    av = fed.sim.availability
    for _, e in ev[ev.client >= 0].iterrows():
        assert inside(av.online_intervals(e.client, total + 1), e.t_start_s, e.t_end_s), e.to_dict()
    assert (clients.status == "offline").any()


@pytest.mark.parametrize("text, message", [
    ("who,start_s,end_s\n", "line 1: expected the header client,start_s,end_s"),
    ("client,start_s,end_s\n0,1\n", "line 2: expected 3 values"),
    ("client,start_s,end_s\n0,a,2\n", "line 2: expected an integer client and two numbers"),
    ("client,start_s,end_s\n7,0,1\n", "line 2: client 7 is not in 0..2"),
    ("client,start_s,end_s\n0,2,1\n", "line 2: expected 0 <= start_s < end_s"),
    ("client,start_s,end_s\n0,0,5\n0,4,9\n", "lines 2 and 3: client 0's intervals overlap"),
])
def test_bad_files_are_named_by_line(tmp_path, text, message):
    path = tmp_path / "a.csv"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        read_availability_file(path, 3)
    assert message in str(err.value) and "availability.file" in str(err.value)
