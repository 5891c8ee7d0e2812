"""Frequency-selective fading across subchannels: the TR 38.901 tapped-delay-line profiles.

A TDL channel is a sum of L taps with delays ``tau_l`` and mean powers ``P_l``
(``sum_l P_l = 1``). On block b the complex gain of subchannel n, sampled at its
centre frequency ``f_n = (n + 1/2) B`` (relative to the band's lower edge), is

.. math:: H_{n,b} = \\sum_l a_{l,b}\\, e^{-j 2\\pi f_n \\tau_l},

each Rayleigh tap ``a_{l,b} = \\sqrt{P_l} h_{l,b}`` with ``h_l`` the Gauss-Markov
process of :func:`channel.fading.rayleigh_gauss_markov` (same rho as the flat
model), and for TDL-D / TDL-E the first tap specular (line of sight),
``a_0 = \\sqrt{P_0} e^{j \\phi}`` with a phase drawn once per client. Then
``E|H_n|^2 = 1`` and the correlation between subchannels ``\\Delta f`` apart is the
Fourier transform of the power-delay profile,

.. math:: E[H_n H_m^*] = \\sum_l P_l e^{-j 2 \\pi (f_n - f_m) \\tau_l}.

Profiles: TR 38.901 Tables 7.7.2-1 to 7.7.2-5 (normalised delays and powers in
dB; TDL-D/E list the LoS tap and a Rayleigh tap at delay 0), delays scaled by
the RMS delay spread as in sec. 7.7.3, ``tau_l = tau_norm,l DS``; TR 38.901
Table 7.7.3-1 names 10, 30, 100 (nominal), 300 and 1000 ns. The normalised
profiles have an RMS delay spread of 1 (0.994 for TDL-D). The powers are
normalised to sum to 1 here. Not modelled: the K-factor rescaling of sec. 7.7.6,
a Doppler rotation of the LoS tap, several antennas.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from channel import _check
from channel.fading import BlockFading

__all__ = ["TDL_PROFILES", "tdl_taps", "rms_delay_spread_s", "frequency_correlation", "subchannel_frequencies_hz",
           "TdlFading"]

# (normalised delays, powers in dB, first tap is LoS) from TR 38.901 Tables 7.7.2-1 .. 7.7.2-5.
TDL_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...], bool]] = {
    "TDL-A": ((0.0, 0.3819, 0.4025, 0.5868, 0.4610, 0.5375, 0.6708, 0.5750, 0.7618, 1.5375, 1.8978, 2.2242,
               2.1718, 2.4942, 2.5119, 3.0582, 4.0810, 4.4579, 4.5695, 4.7966, 5.0066, 5.3043, 9.6586),
              (-13.4, 0.0, -2.2, -4.0, -6.0, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7, -12.4, -15.2, -10.8,
               -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7), False),
    "TDL-B": ((0.0, 0.1072, 0.2155, 0.2095, 0.2870, 0.2986, 0.3752, 0.5055, 0.3681, 0.3697, 0.5700, 0.5283,
               1.1021, 1.2756, 1.5474, 1.7842, 2.0169, 2.8294, 3.0219, 3.6187, 4.1067, 4.2790, 4.7834),
              (0.0, -2.2, -4.0, -3.2, -9.8, -1.2, -3.4, -5.2, -7.6, -3.0, -8.9, -9.0, -4.8, -5.7, -7.5, -1.9,
               -7.6, -12.2, -9.8, -11.4, -14.9, -9.2, -11.3), False),
    "TDL-C": ((0.0, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935, 0.8213, 0.9336,
               1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077, 6.3065, 6.6374, 7.0427, 8.6523),
              (-4.4, -1.2, -3.5, -5.2, -2.5, 0.0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1, -6.8, -8.7, -13.2,
               -13.9, -13.9, -15.8, -17.1, -16.0, -15.7, -21.6, -22.8), False),
    "TDL-D": ((0.0, 0.0, 0.035, 0.612, 1.363, 1.405, 1.804, 2.596, 1.775, 4.042, 7.937, 9.424, 9.708, 12.525),
              (-0.2, -13.5, -18.8, -21.0, -22.8, -17.9, -20.1, -21.9, -22.9, -27.8, -23.6, -24.8, -30.0, -27.7),
              True),
    "TDL-E": ((0.0, 0.0, 0.5133, 0.5440, 0.5630, 0.5440, 0.7112, 1.9092, 1.9293, 1.9589, 2.6426, 3.7136, 5.4524,
               12.0034, 20.6519),
              (-0.03, -22.03, -15.8, -18.1, -19.8, -22.9, -22.4, -18.6, -20.8, -22.6, -22.3, -25.6, -20.2, -29.8,
               -29.2), True),
}


def tdl_taps(profile: str, delay_spread_s: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Tap delays (s) and powers (linear, summing to 1) of ``profile`` at RMS delay spread ``delay_spread_s``.

    Returns ``(delays_s (L,), powers_lin (L,), los_first)``; with ``los_first`` tap 0 is specular.
    """
    try:
        delays, powers_db, los = TDL_PROFILES[profile]
    except KeyError:
        raise ValueError(f"profile(={profile!r}) must be one of {', '.join(TDL_PROFILES)}") from None
    ds = float(_check.non_negative("delay_spread_s", delay_spread_s))
    powers = np.power(10.0, np.asarray(powers_db) / 10.0)
    return np.asarray(delays) * ds, powers / powers.sum(), los


def rms_delay_spread_s(delays_s: ArrayLike, powers_lin: ArrayLike) -> float:
    """RMS delay spread ``sqrt(sum P tau^2 / sum P - (sum P tau / sum P)^2)``, s."""
    tau, p = np.asarray(delays_s, dtype=float), np.asarray(powers_lin, dtype=float)
    p = p / p.sum()
    mean = float(p @ tau)
    return math.sqrt(max(float(p @ tau**2) - mean * mean, 0.0))


def frequency_correlation(delays_s: ArrayLike, powers_lin: ArrayLike, delta_f_hz: ArrayLike) -> np.ndarray:
    """``sum_l P_l exp(-j 2 pi delta_f tau_l)``: the Fourier transform of the power-delay profile (complex)."""
    tau, p = np.asarray(delays_s, dtype=float), np.asarray(powers_lin, dtype=float)
    df = np.asarray(delta_f_hz, dtype=float)
    return np.exp(-2j * np.pi * df[..., None] * tau) @ p


def subchannel_frequencies_hz(n_subchannels: int, bandwidth_hz: float) -> np.ndarray:
    """Centre frequencies ``(n + 1/2) B`` of N adjacent subchannels, relative to the band's lower edge, Hz."""
    n = _check.count("n_subchannels", n_subchannels)
    return (np.arange(n) + 0.5) * float(_check.positive("bandwidth_hz", bandwidth_hz))


class TdlFading(BlockFading):
    """One client's tapped-delay-line fading on N adjacent subchannels, block by block.

    Same interface and chunked, lazy generation as :class:`channel.BlockFading`;
    the Gauss-Markov processes are the taps', and each block's gains are their
    Fourier sum at the subchannel centres (module docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
        This client's fading stream (one integer and, for TDL-D/E, one uniform are drawn).
    n_subchannels : int
        Number N of adjacent subchannels.
    block_s, rho : float
        Block length T (s) and block-to-block correlation of each tap.
    profile : str
        ``"TDL-A"`` .. ``"TDL-E"``.
    delay_spread_s : float
        RMS delay spread DS, s (0: every subchannel fades together).
    subchannel_bandwidth_hz : float
        B, the spacing of the subchannel centres, Hz.
    """

    def __init__(self, rng: np.random.Generator, n_subchannels: int, *, block_s: float, rho: float, profile: str,
                 delay_spread_s: float, subchannel_bandwidth_hz: float):
        super().__init__(rng, n_subchannels, block_s=block_s, rho=rho, enabled=True)
        delays, powers, los = tdl_taps(profile, delay_spread_s)
        self.profile = profile
        self.delays_s, self.powers_lin, self.los_first = delays, powers, los
        freqs = subchannel_frequencies_hz(self.n_subchannels, subchannel_bandwidth_hz)
        # steering[l, n] = sqrt(P_l) exp(-j 2 pi f_n tau_l)
        steering = np.sqrt(powers)[:, None] * np.exp(-2j * np.pi * delays[:, None] * freqs[None, :])
        if los:
            phase = 2.0 * np.pi * rng.random()
            self._los_row = steering[0] * np.exp(1j * phase)
            self._steering = steering[1:]
        else:
            self._los_row = np.zeros(self.n_subchannels, dtype=complex)
            self._steering = steering
        self._taps = np.arange(self._steering.shape[0])

    @property
    def is_static(self) -> bool:
        return self.rho == 1.0

    def _chunk(self, c: int, cols: np.ndarray) -> np.ndarray:
        # The Gauss-Markov processes are the Rayleigh taps (all of them), summed at the subchannels asked for.
        taps = self._processes.chunk(c, self._taps)
        return taps @ self._steering[:, cols] + self._los_row[cols]
