"""A progress bar over the runs of a sweep (stderr, tqdm): done, failed, running."""

from __future__ import annotations

import sys


class SweepProgress:
    """``with SweepProgress(total=N, done=D) as p:`` then ``p.update(done=, failed=, running=)``."""

    def __init__(self, *, total: int, done: int = 0, enabled: bool = True):
        self.total, self.initial, self.enabled = total, done, enabled
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.initial, unit="run", file=sys.stderr,
                            dynamic_ncols=True, desc="sweep",
                            bar_format="{desc} {bar} {n_fmt}/{total_fmt} runs [{elapsed}<{remaining}]{postfix}")
        return self

    def update(self, *, done: int, failed: int, running: int) -> None:
        if self.bar is not None:
            self.bar.n = done + failed
            self.bar.set_postfix_str(f"done {done}, failed {failed}, running {running}", refresh=False)
            self.bar.refresh()

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
