"""Where the clients are: distances to the base station in a circular cell."""

from __future__ import annotations

import numpy as np

from channel import _check

__all__ = ["drop_uniform_in_cell"]


def drop_uniform_in_cell(
    rng: np.random.Generator,
    n_clients: int,
    *,
    radius_m: float,
    min_distance_m: float,
) -> np.ndarray:
    """Drop clients uniformly over the area of an annulus around the base station.

    The distance ``r`` has pdf :math:`f(r) = 2r / (R^2 - r_0^2)` on
    :math:`[r_0, R]`, i.e. CDF :math:`F(r) = (r^2 - r_0^2)/(R^2 - r_0^2)`;
    it is drawn by inversion, :math:`r = \\sqrt{r_0^2 + U (R^2 - r_0^2)}`
    with :math:`U \\sim \\mathcal{U}[0, 1)`, one uniform draw per client.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream of the geometry (not shared with the fading).
    n_clients : int
        Number of clients K >= 0.
    radius_m : float
        Cell radius R in m, > 0 (default scenario: 500 m).
    min_distance_m : float
        Minimum distance r_0 in m, 0 <= r_0 <= R (default scenario: 10 m).

    Returns
    -------
    numpy.ndarray
        Distances in m, shape ``(n_clients,)``, each in ``[min_distance_m, radius_m]``.
    """
    n = _check.count("n_clients", n_clients)
    r_max = float(_check.positive("radius_m", radius_m))
    r_min = float(_check.non_negative("min_distance_m", min_distance_m))
    if r_min > r_max:
        raise ValueError(f"min_distance_m(={min_distance_m!r}) must be <= radius_m(={radius_m!r})")
    u = rng.random(n)
    distances_m = np.sqrt(r_min**2 + u * (r_max**2 - r_min**2))
    # Rounding can leave the square root a hair outside the annulus.
    return np.clip(distances_m, r_min, r_max)
