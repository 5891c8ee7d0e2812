import re
from pathlib import Path

from cosim.scenario.reference import render_reference

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_scenario_reference_matches_the_schema():
    text = README.read_text()
    block = re.search(r"<!-- scenario-reference:start -->\n(.*?)<!-- scenario-reference:end -->", text, re.S)
    assert block, "README lost its scenario-reference markers"
    assert block.group(1) == render_reference(), (
        "README scenario reference is stale: run `python -m cosim.scenario.reference --write README.md`")


def test_readme_gives_the_two_setup_commands_ci_runs():
    text = README.read_text()
    assert "make quickstart" in text and "make test" in text
    assert "make test" in (README.parent / ".ci" / "run").read_text()
