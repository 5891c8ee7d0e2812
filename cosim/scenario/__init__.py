"""Scenario schema and loading."""

from .load import dump_scenario, load_scenario, scenario_from_dict
from .schema import (Allocation, Channel, Clients, Compute, Data, Energy, Link, Lora, Mobility, Model, Runtime,
                     Scenario, Split, Strategy, Training, Tsfa)

__all__ = [
    "Allocation", "Channel", "Clients", "Compute", "Data", "Energy", "Link", "Lora", "Mobility", "Model", "Runtime",
    "Scenario", "Split", "Strategy", "Training", "Tsfa", "dump_scenario", "load_scenario", "scenario_from_dict",
]
