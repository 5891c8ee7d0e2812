"""Shadowing correlated between devices by the distance between them.

Log-normal shadowing of devices that are close together is correlated; the usual
model is an exponential decay in their separation (Gudmundson 1991, Electronics
Letters 27(23); 3GPP TR 38.901 sec. 7.6.3 / Table 7.5-6 for the distances)::

    corr(X_i, X_j) = exp(-|p_i - p_j| / d_corr).

Given each device's own standard-normal draw ``z_k`` (from its own stream), the
correlated values are ``x = L z`` with ``L`` the lower Cholesky factor of that
correlation matrix. ``L`` is lower triangular, so device k's value depends on
``z_0 .. z_k`` only: adding a device at the end never changes the others.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from channel import _check

__all__ = ["exponential_correlation", "correlated_normals"]


def exponential_correlation(positions_m: ArrayLike, decorrelation_m: float) -> np.ndarray:
    """Correlation matrix ``exp(-|p_i - p_j| / d_corr)`` of devices at ``positions_m`` (K, 2), shape (K, K)."""
    p = np.asarray(positions_m, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"positions_m has shape {p.shape}, expected (K, 2)")
    d_corr = float(_check.positive("decorrelation_m", decorrelation_m))
    gap = np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])
    return np.exp(-gap / d_corr)


def correlated_normals(z: ArrayLike, positions_m: ArrayLike, decorrelation_m: float) -> np.ndarray:
    """Standard normals with the exponential correlation of the devices' positions.

    Parameters
    ----------
    z : (K,) array_like
        Independent standard-normal draws, one per device (each from its own stream).
    positions_m : (K, 2) array_like
        Device positions, m.
    decorrelation_m : float
        d_corr, m.

    Returns
    -------
    numpy.ndarray
        ``L z``, shape (K,): each entry standard normal, ``E[x_i x_j] = exp(-|p_i - p_j| / d_corr)``.
    """
    z = np.asarray(z, dtype=float)
    corr = exponential_correlation(positions_m, decorrelation_m)
    if z.shape != (corr.shape[0],):
        raise ValueError(f"z has shape {z.shape}, expected ({corr.shape[0]},)")
    # Devices at the same spot make the matrix singular: a tiny ridge keeps Cholesky defined
    # and changes the correlations by at most 1e-10.
    chol = np.linalg.cholesky(corr + 1e-10 * np.eye(corr.shape[0]))
    return chol @ z
