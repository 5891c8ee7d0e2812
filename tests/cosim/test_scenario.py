import textwrap

import pytest

from cosim.errors import ScenarioError
from cosim.scenario import dump_scenario, load_scenario, scenario_from_dict
from cosim.scenario.load import read_yaml


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(raw):
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(raw, source="s.yaml")
    return info.value.problems


def test_defaults_are_the_design_defaults():
    sc = scenario_from_dict({})
    assert sc.channel.pathloss_intercept_db == 128.1 and sc.channel.pathloss_slope_db == 37.6
    assert sc.channel.n_subchannels == 50 and sc.channel.subchannel_bandwidth_hz == 180e3
    assert sc.clients.max_power_dbm == 23 and sc.clients.cell_radius_m == 500
    assert sc.compute.server_flops_per_s == 100e12


def test_every_problem_is_reported_with_its_path():
    problems = problems_of({
        "clients": {"count": 0, "colour": "red"},
        "channel": {"n_subchannels": "many"},
        "training": {"rounds": 1.5, "lr": -1},
        "data": {"task": "mnist"},
        "surprise": 1,
    })
    text = "\n".join(problems)
    assert len(problems) == 7, text
    assert all(p.startswith("s.yaml: ") for p in problems)
    for needle in ("clients.count: expected a value > 0 (got 0)",
                   "clients.colour: unknown key",
                   "channel.n_subchannels: expected an integer (got 'many')",
                   "training.rounds: expected an integer (got 1.5)",
                   "training.lr: expected a value > 0 (got -1",
                   "data.task: expected one of 'imdb', 'rotten_tomatoes', 'bbc_news' (got 'mnist')",
                   "surprise: unknown key"):
        assert needle in text


def test_cross_field_checks():
    text = "\n".join(problems_of({"clients": {"count": 3, "placement": "fixed", "distances_m": [100, 200]},
                                  "compute": {"client_flops_per_s": [1e12, 2e12]}}))
    assert "clients.distances_m: expected 1 or clients.count=3 values (got 2)" in text
    assert "compute.client_flops_per_s: expected 1 or clients.count=3 values (got 2)" in text
    assert "clients.count" in "\n".join(problems_of({"clients": {"count": 60}}))
    assert "distances_m" in "\n".join(problems_of({"clients": {"placement": "fixed"}}))


def test_yaml_1_1_exponents_written_without_a_dot_are_numbers():
    sc = scenario_from_dict({"channel": {"subchannel_bandwidth_hz": "180e3"}})
    assert sc.channel.subchannel_bandwidth_hz == 180e3


def test_overrides_and_seed(tmp_path):
    path = write(tmp_path, """
        training:
          rounds: 2
    """)
    sc = load_scenario(path, overrides=["training.rounds=5", "lora.rank=16", "clients.distances_m=[50, 60]",
                                        "clients.count=2"], seed=9)
    assert (sc.training.rounds, sc.lora.rank, sc.seed) == (5, 16, 9)
    assert sc.clients.distances_m == (50.0, 60.0)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=["training.rounds=x", "novalue", "training.rounds.deeper=1"])
    text = str(info.value)
    assert "--set novalue: expected dotted.key=value" in text
    assert "--set training.rounds.deeper: training.rounds is not a section" in text


def test_bad_files(tmp_path):
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")
    bad = write(tmp_path, "training:\n  rounds: [1,\n")
    with pytest.raises(ScenarioError, match=r"line \d+, column \d+: invalid YAML"):
        read_yaml(bad)
    with pytest.raises(ScenarioError, match="expected a mapping of sections"):
        load_scenario(write(tmp_path, "- 1\n- 2\n"))


def test_resolved_scenario_round_trips(tmp_path):
    sc = load_scenario("scenarios/quickstart.yaml")
    again = load_scenario(write(tmp_path, dump_scenario(sc)))
    assert again == sc
