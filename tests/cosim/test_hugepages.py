"""cosim's commands turn numpy's huge-page advice off, unless the user set numpy's own switch."""

import subprocess
import sys

import pytest

CHECK = ("import numpy; from numpy._core.multiarray import _get_madvise_hugepage as get; "
         "from cosim.hugepages import numpy_without_huge_pages as off; "
         "before = get(); changed = off(); print(before, changed, get())")


@pytest.mark.parametrize("env, expected", [({}, "True True False"),
                                           ({"NUMPY_MADVISE_HUGEPAGE": "1"}, "True False True"),
                                           ({"NUMPY_MADVISE_HUGEPAGE": "0"}, "False False False")])
def test_huge_pages_are_off_unless_the_user_chose(env, expected, monkeypatch):
    pytest.importorskip("numpy._core.multiarray")
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout.split()
    if not env and out[0] == "False":  # a kernel older than 4.6: numpy never advises huge pages
        pytest.skip("numpy does not advise huge pages on this kernel")
    assert " ".join(out) == expected
