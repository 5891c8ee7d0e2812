import subprocess
import sys
from pathlib import Path

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


def import_cycles(root: Path) -> list[list[str]]:
    """Cycles among the modules of package ``root`` through their module-level imports (imports inside
    functions, which run later, do not count)."""
    import ast

    mods = {}
    for p in root.rglob("*.py"):
        name = ".".join(p.relative_to(root.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p

    def targets(cur: str, node) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        pkg = cur if mods[cur].name == "__init__.py" else cur.rsplit(".", 1)[0]
        base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
        target = ".".join(base + ([node.module] if node.module else []))
        subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
        return subs if len(subs) == len(node.names) else [target, *subs]  # `from . import mod`: the module only

    graph = {name: {t for node in ast.parse(p.read_text()).body if isinstance(node, (ast.Import, ast.ImportFrom))
                    for t in targets(name, node) if t in mods and t != name}
             for name, p in mods.items()}
    cycles, done = [], set()
    for start in sorted(graph):  # a path back to a module from itself, found once per cycle
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start and frozenset(path) not in done:
                    done.add(frozenset(path))
                    cycles.append(path)
                elif nxt not in seen and nxt > start:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return cycles


def test_no_import_cycle_in_cosim_channel_solver():
    root = Path(__file__).resolve().parents[2]
    for package in ("cosim", "channel", "solver", "llm_split"):
        assert import_cycles(root / package) == [], package


def test_the_cycle_check_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "run.py").write_text("from .allocation import policy\n")
    (pkg / "allocation.py").write_text("from . import optimize\n")
    (pkg / "optimize.py").write_text("import os\nfrom .run import go\n")
    (pkg / "later.py").write_text("def f():\n    from .run import go\n")
    assert import_cycles(pkg) == [["pkg.allocation", "pkg.optimize", "pkg.run"]]
