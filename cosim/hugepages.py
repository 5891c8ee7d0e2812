"""numpy's transparent huge pages, off for cosim's commands.

numpy asks the kernel for transparent huge pages (``madvise``) on every large
array. Where first touching a huge page is slow, a trace of millions of rows
pays for it in seconds: on this project's 2-core VM, 17 arrays of 26 MB took
1.85 s to fill with huge pages and 0.16 s without, and a 1,000-client x
100-round replay spent 3-6 s in the kernel instead of about 2. The arrays a run
builds are written once and read a few times, so huge pages buy little TLB
reach back. ``cosim``'s command line turns them off unless
``NUMPY_MADVISE_HUGEPAGE`` says otherwise (numpy's own switch, read when numpy
starts); code that calls :func:`cosim.run.run_scenario` itself can call
:func:`numpy_without_huge_pages` the same way.
"""

from __future__ import annotations

import os


def numpy_without_huge_pages() -> bool:
    """Stop numpy advising huge pages for its arrays, unless the user chose with ``NUMPY_MADVISE_HUGEPAGE``.

    Returns whether the setting was changed (False: the user's choice stands, or this numpy has no switch).
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy 1.x
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return False
    _set_madvise_hugepage(False)
    return True
