"""Reading a profile written by ``cosim profile --out``: the cost table and the pilot curves.

Below everything that reads profiles (the replay, the allocation policies, the
scenario checks, ``cosim optimize``): it imports only the convergence fits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .convergence import Convergence
from .errors import CosimError

# The cost table's arrays, as ``solver.CostTable`` fields.
ARRAYS = ("cuts", "ranks", "client_forward_flops", "client_backward_flops", "server_flops",
           "activation_bytes", "gradient_bytes", "client_adapter_bytes")


def read_profile(path: str | Path) -> dict:
    """Read a profile written by ``cosim profile --out``; ``costs`` holds numpy arrays again.

    Profiles written before ``server_adapter_bytes``, ``adapter_element_bytes``
    and ``pilot`` existed read with those set to None.
    """
    try:
        result = json.loads(Path(path).read_text())
        costs = result["costs"]
        result["costs"] = {name: np.asarray(costs[name], dtype=np.int64 if name in ("cuts", "ranks") else float)
                           for name in ARRAYS}
        if result.get("server_adapter_bytes") is not None:
            result["server_adapter_bytes"] = np.asarray(result["server_adapter_bytes"], dtype=float)
        for key in ("server_adapter_bytes", "adapter_element_bytes", "pilot"):
            result.setdefault(key, None)
        if result["pilot"] is not None:
            Convergence.from_pilot(result["pilot"])  # a broken pilot section is refused here, once
    except CosimError as exc:
        raise CosimError(f"{path}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CosimError(f"{path}: not a cosim profile ({type(exc).__name__}: {exc})") from exc
    return result


def profile_convergence(result: dict) -> Convergence | None:
    """The fitted convergence of a profile's pilot runs, or None when it has none."""
    return Convergence.from_pilot(result["pilot"]) if result.get("pilot") else None
