import subprocess
import sys

# A meta-path finder that makes torch, transformers and peft unimportable, as on a machine without them.
BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'transformers', 'peft'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r} (blocked)')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_channel_solver_cosim_analysis_import_without_torch():
    code = BLOCK_TORCH + (
        "import channel, solver, cosim, cosim.analysis\n"
        "import cosim.cli, cosim.run, cosim.radio, cosim.scenario, cosim.workload, cosim.build\n"
        "import cosim.workloads.replay, cosim.convergence, cosim.allocation, cosim.strategies\n"
        "import cosim.steps, cosim.rounds, cosim.asynchronous, cosim.closing, cosim.tsfa, solver.tsfa\n"
        "from cosim.scenario import scenario_from_dict\n"
        "from cosim.radio import build_radio\n"
        "build_radio(scenario_from_dict({}))\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_the_torch_blocker_really_blocks():
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH + "import llm_split.models"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "torch" in proc.stderr
