"""Workloads the engine can drive (see ``cosim.workload``). Each imports its heavy dependencies itself."""
