"""A progress bar over rounds that also shows the simulated clock (stderr, tqdm)."""

from __future__ import annotations

import sys


class Progress:
    """``with Progress(total_rounds=R) as p:`` then ``p.stage(text)`` and ``p.round_done(r, now_s)``."""

    def __init__(self, *, total_rounds: int, enabled: bool = True):
        self.total_rounds = total_rounds
        self.enabled = enabled
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total_rounds, unit="round", file=sys.stderr, dynamic_ncols=True,
                            bar_format="{desc} {bar} {n_fmt}/{total_fmt} rounds [{elapsed}<{remaining}]{postfix}")
            self.bar.set_description_str("starting")
        return self

    def stage(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(text)

    def round_done(self, r: int, now_s: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"simulated {now_s:.3f} s")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
