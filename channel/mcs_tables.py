"""NR MCS tables (3GPP TS 38.214) with the SINR each MCS needs, for link abstraction.

Columns per MCS index:

- ``qm``, ``rate_x1024``: modulation order and target code rate x 1024, TS 38.214
  Table 5.1.3.1-1 ("qam64", MCS 0-28) and Table 5.1.3.1-2 ("qam256", MCS 0-27);
  the spectral efficiency is ``qm rate_x1024 / 1024`` bit/s/Hz (the tables print
  it rounded to 4 decimals: ``se_printed``, e.g. 5.5547 for MCS 28 of Table 1,
  7.4063 for MCS 27 of Table 2).
- ``sinr10_db``: the SINR (dB, AWGN, one layer) at which the MCS's block error
  rate is 10 %. Source: the BLER-SINR curves of the ns-3 5G-LENA NR module
  (CTTC; S. Lagen et al., "New Radio Physical Layer Abstraction for
  System-Level Simulations of 5G Networks", IEEE ICC 2020, arXiv:2001.10309;
  files ``nr-eesm-t1.cc`` / ``nr-eesm-t2.cc``), read at BLER = 0.1 by log-linear
  interpolation on the curve of the largest code block simulated (LDPC base
  graph 2 for code rates <= 0.25, base graph 1 otherwise; 8192-8448 bits for
  most MCS, 928 bits for MCS 28 of Table 1, 5248 for MCS 27 of Table 2).
  Accuracy: the curves are sampled every 0.2-0.5 dB, so about +-0.2 dB against
  that source; the OpenAirInterface nr_dlsim AWGN curves for Table 1 lie within
  about 1 dB of these (up to 1.7 dB at MCS 1). Both sit 3-5 dB above the
  Shannon bound ``10 log10(2^SE - 1)``: they include a practical receiver.
- ``slope_per_db``: slope a of the logistic BLER curve in dB used between the
  tabulated points, ``BLER(g) = 1 / (1 + 9 exp(a (g - sinr10_db)))`` (10 % at
  ``sinr10_db``); a least-squares fit of ``logit(BLER)`` against SINR on the same
  5G-LENA curve (points with 1e-3 < BLER < 0.999).
- ``eesm_beta``: the EESM parameter beta (linear SINR units) per MCS, from
  5G-LENA v1.0 (the same files, ``BetaTable1`` / ``BetaTable2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["McsTable", "MCS_TABLES", "mcs_table"]


@dataclass(frozen=True, eq=False)
class McsTable:
    """One MCS table; every array has one entry per MCS index (module docstring)."""

    name: str
    qm: np.ndarray
    rate_x1024: np.ndarray
    se_printed: np.ndarray
    sinr10_db: np.ndarray
    slope_per_db: np.ndarray
    eesm_beta: np.ndarray

    @property
    def spectral_efficiency(self) -> np.ndarray:
        """``qm rate_x1024 / 1024``, bit/s/Hz, per MCS."""
        return self.qm * self.rate_x1024 / 1024.0

    def __len__(self) -> int:
        return self.qm.size


def _table(name, qm, rate, se, sinr10, slope, beta) -> McsTable:
    arrays = [np.asarray(x, dtype=float) for x in (qm, rate, se, sinr10, slope, beta)]
    if len({a.size for a in arrays}) != 1:
        raise AssertionError(f"MCS table {name}: columns of different lengths")
    for a in arrays:
        a.setflags(write=False)
    return McsTable(name, *arrays)


MCS_TABLES = {
    "qam64": _table(
        "qam64",
        qm=[2] * 10 + [4] * 7 + [6] * 12,
        rate=[120, 157, 193, 251, 308, 379, 449, 526, 602, 679, 340, 378, 434, 490, 553, 616, 658,
              438, 466, 517, 567, 616, 666, 719, 772, 822, 873, 910, 948],
        se=[0.2344, 0.3066, 0.3770, 0.4902, 0.6016, 0.7402, 0.8770, 1.0273, 1.1758, 1.3262, 1.3281, 1.4766,
            1.6953, 1.9141, 2.1602, 2.4063, 2.5703, 2.5664, 2.7305, 3.0293, 3.3223, 3.6094, 3.9023, 4.2129,
            4.5234, 4.8164, 5.1152, 5.3320, 5.5547],
        sinr10=[-1.01, -0.61, 0.21, 1.20, 1.95, 2.68, 3.44, 4.03, 4.83, 5.61, 6.26, 6.97, 7.71, 8.50, 9.31,
                10.26, 10.82, 11.57, 12.19, 13.14, 14.00, 14.83, 15.75, 16.62, 17.66, 18.47, 19.65, 20.61, 22.64],
        slope=[10.2, 13.1, 11.5, 11.7, 13.5, 12.2, 11.6, 12.3, 12.6, 12.6, 15.9, 15.9, 16.8, 13.7, 14.6, 13.0,
               13.6, 12.9, 12.9, 12.2, 13.4, 12.9, 12.7, 11.6, 15.0, 12.7, 11.5, 11.3, 2.8],
        beta=[1.6, 1.61, 1.63, 1.65, 1.67, 1.7, 1.73, 1.76, 1.79, 1.82, 3.97, 4.27, 4.71, 5.16, 5.66, 6.16, 6.5,
              9.95, 10.97, 12.92, 14.96, 17.06, 19.33, 21.85, 24.51, 27.14, 29.94, 32.05, 34.28],
    ),
    "qam256": _table(
        "qam256",
        qm=[2] * 5 + [4] * 6 + [6] * 9 + [8] * 8,
        rate=[120, 193, 308, 449, 602, 378, 434, 490, 553, 616, 658, 466, 517, 567, 616, 666, 719, 772, 822, 873,
              682.5, 711, 754, 797, 841, 885, 916.5, 948],
        se=[0.2344, 0.3770, 0.6016, 0.8770, 1.1758, 1.4766, 1.6953, 1.9141, 2.1602, 2.4063, 2.5703, 2.7305,
            3.0293, 3.3223, 3.6094, 3.9023, 4.2129, 4.5234, 4.8164, 5.1152, 5.3320, 5.5547, 5.8906, 6.2266,
            6.5703, 6.9141, 7.1602, 7.4063],
        sinr10=[-1.01, 0.21, 1.95, 3.44, 4.83, 6.97, 7.71, 8.50, 9.31, 10.26, 10.82, 12.19, 13.14, 14.00, 14.83,
                15.75, 16.62, 17.66, 18.47, 19.65, 20.82, 21.44, 22.42, 23.28, 24.34, 25.25, 26.42, 27.08],
        slope=[10.2, 11.5, 13.5, 11.6, 12.6, 15.9, 16.8, 13.7, 14.6, 13.0, 13.6, 12.9, 12.2, 13.4, 12.9, 12.7,
               11.6, 15.0, 12.7, 11.5, 10.6, 10.5, 10.7, 9.9, 9.7, 10.8, 9.8, 8.3],
        beta=[1.6, 1.63, 1.67, 1.73, 1.79, 4.27, 4.71, 5.16, 5.66, 6.16, 6.5, 10.97, 12.92, 14.96, 17.06, 19.33,
              21.85, 24.51, 27.14, 29.94, 56.48, 65.0, 78.58, 92.48, 106.27, 118.74, 126.36, 132.54],
    ),
}


def mcs_table(name: str) -> McsTable:
    """The table ``"qam64"`` (TS 38.214 Table 5.1.3.1-1) or ``"qam256"`` (Table 5.1.3.1-2)."""
    try:
        return MCS_TABLES[name]
    except KeyError:
        raise ValueError(f"mcs_table(={name!r}) must be one of {', '.join(MCS_TABLES)}") from None
