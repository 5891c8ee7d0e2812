"""The aggregation, participation and availability sections: defaults, and every bad combination refused."""

import pytest

from cosim.cli import main
from cosim.scenario import scenario_from_dict
from cosim.scenario.combinations import MODES_BY_STRATEGY
from cosim.scenario.schema import AGGREGATION_MODES, STRATEGIES
from cosim.strategies import REGISTRY


def test_defaults_are_todays_behaviour():
    sc = scenario_from_dict({})
    assert sc.aggregation.mode == "barrier" and sc.participation.fraction == 1.0
    assert sc.availability.model == "always" and sc.strategy.name == "split"


def test_every_strategy_is_registered_and_in_the_table():
    assert tuple(REGISTRY) == STRATEGIES == tuple(MODES_BY_STRATEGY)
    assert all(set(modes) <= set(AGGREGATION_MODES) for modes in MODES_BY_STRATEGY.values())


@pytest.mark.parametrize("overrides, message", [
    (["aggregation.mode=deadline"], "aggregation.deadline_s: expected a deadline in seconds"),
    (["aggregation.mode=deadline", "aggregation.deadline_s=-1"], "aggregation.deadline_s: expected a value > 0"),
    (["aggregation.mode=sometimes"], "aggregation.mode: expected one of 'barrier', 'deadline'"),
    (["aggregation.deadline_s=3"], "aggregation.deadline_s: only 'deadline' and 'over_selection' use a deadline"),
    (["aggregation.mode=over_selection"], "participation.fraction: expected a fraction below 1"),
    (["aggregation.mode=over_selection", "participation.fraction=0.5", "aggregation.over_selection=0.9"],
     "aggregation.over_selection: expected a value >= 1"),
    (["strategy.name=sl", "aggregation.mode=deadline", "aggregation.deadline_s=1"],
     "aggregation.mode: 'deadline' does not run with strategy.name='sl' (which runs under barrier); "
     "'deadline' runs with: split, sfl_v2, fedlora, soft, topk, randomk, tsfa"),
    (["strategy.name=tsfa", "tsfa.latency_budget_s=1", "aggregation.mode=fedasync"],
     "'fedasync' runs with: split, sfl_v2, fedlora, soft, topk, randomk"),
    (["aggregation.mode=fedbuff", "aggregation.buffer_size=0"], "aggregation.buffer_size: expected a value > 0"),
    (["aggregation.mode=fedasync", "aggregation.alpha=1.5"], "aggregation.alpha: expected a value <= 1"),
    (["aggregation.time_budget_s=10"], "aggregation.time_budget_s: only 'fedasync' and 'fedbuff'"),
    (["strategy.name=fedlora", "strategy.aggregation=product", "aggregation.mode=fedbuff"],
     "strategy.aggregation: expected 'factors' with aggregation.mode: fedbuff"),
    (["participation.fraction=0"], "participation.fraction: expected a value > 0"),
    (["participation.fraction=1.5"], "participation.fraction: expected a value <= 1"),
    (["participation.by=luck"], "participation.by: expected one of 'uniform', 'gain'"),
    (["participation.fraction=0.5", "allocation.policy=resources_only"],
     "allocation.policy: expected 'equal' with partial participation"),
    (["strategy.name=sfl_v2", "allocation.policy=optimizer"], "changes the cut and rank, which only"),
    (["availability.model=file"], "availability.file: expected a CSV file"),
    (["availability.model=file", "availability.file=/nonexistent.csv"], "availability.file: /nonexistent.csv: "
                                                                         "no such file"),
    (["availability.file=a.csv"], "availability.file: only availability.model: file reads a file"),
    (["availability.model=on_off", "availability.mean_on_s=0"], "availability.mean_on_s: expected a value > 0"),
])
def test_bad_combinations_exit_2_naming_the_key(tmp_path, capsys, overrides, message):
    args = [a for o in overrides for a in ("--set", o)]
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(tmp_path / "x"), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_a_bad_availability_file_names_its_line(tmp_path, capsys):
    bad = tmp_path / "a.csv"
    bad.write_text("client,start_s,end_s\n0,0,10\n9,0,1\n")
    assert main(["validate", "scenarios/quickstart.yaml", "--set", "availability.model=file",
                 "--set", f"availability.file={bad}"]) == 2
    assert f"availability.file: {bad}: line 3: client 9 is not in 0..3" in capsys.readouterr().err
