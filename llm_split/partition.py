"""Split a training set among federated clients.

Two schemes: IID (a random permutation cut into near-equal parts) and the
label-skewed Dirichlet scheme of Hsu et al. (2019), "Measuring the effects of
non-identical data distribution for federated visual classification",
arXiv:1909.06335, in the per-class form used by most federated-learning
benchmarks: for each class, the fractions of its examples that go to each
client are drawn from Dir(alpha, ..., alpha). A small ``alpha`` (0.1) gives
each client few classes; a large one (100) gives near-IID clients.

Each function returns one sorted ``int64`` array of example indices per client;
the arrays are disjoint and together cover ``0 .. n_examples - 1``.
"""

from __future__ import annotations

import numpy as np

from cosim.errors import CosimError


def _check_clients(n_examples: int, n_clients: int, min_per_client: int = 1) -> None:
    if n_clients < 1:
        raise CosimError(f"n_clients(={n_clients}) must be >= 1")
    if n_clients * min_per_client > n_examples:
        raise CosimError(
            f"n_clients(={n_clients}) x min_per_client(={min_per_client}) exceeds "
            f"the {n_examples} examples to share"
        )


def partition_iid(n_examples: int, n_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Share ``n_examples`` uniformly at random among ``n_clients``.

    Parameters
    ----------
    n_examples : int
        Size of the training set; indices are ``0 .. n_examples - 1``.
    n_clients : int
        Number of clients, at most ``n_examples``.
    rng : numpy.random.Generator
        Source of the permutation.

    Returns
    -------
    list of numpy.ndarray of int64
        One sorted index array per client; sizes differ by at most one.
    """
    _check_clients(n_examples, n_clients)
    parts = np.array_split(rng.permutation(n_examples), n_clients)
    return [np.sort(part).astype(np.int64) for part in parts]


def partition_dirichlet(labels, n_clients: int, alpha: float, rng: np.random.Generator,
                        *, min_per_client: int = 1, max_tries: int = 100) -> list[np.ndarray]:
    """Share a labelled set among clients with Dirichlet label skew.

    For each class c, with ``n_c`` examples shuffled, draw
    ``q_c ~ Dir(alpha * 1_K)`` over the K clients and give client k the
    examples between positions ``floor(n_c * sum_{j<k} q_cj)`` and
    ``floor(n_c * sum_{j<=k} q_cj)`` (Hsu et al., 2019). The whole draw is
    repeated, up to ``max_tries`` times, until every client holds at least
    ``min_per_client`` examples.

    Parameters
    ----------
    labels : array_like of int, shape (n_examples,)
        Class of each example.
    n_clients : int
        Number of clients K.
    alpha : float
        Dirichlet concentration, > 0; smaller means more skew.
    rng : numpy.random.Generator
        Source of the shuffles and the proportions.
    min_per_client : int
        Fewest examples a client may end up with.
    max_tries : int
        Draws attempted before giving up.

    Returns
    -------
    list of numpy.ndarray of int64
        One sorted index array per client, disjoint and covering.

    Raises
    ------
    CosimError
        Bad arguments, or no draw in ``max_tries`` met ``min_per_client``.
    """
    labels = np.asarray(labels).reshape(-1)
    if not alpha > 0:
        raise CosimError(f"alpha(={alpha}) must be > 0")
    if min_per_client < 0:
        raise CosimError(f"min_per_client(={min_per_client}) must be >= 0")
    if max_tries < 1:
        raise CosimError(f"max_tries(={max_tries}) must be >= 1")
    _check_clients(len(labels), n_clients, min_per_client)
    classes = np.unique(labels)
    for _ in range(max_tries):
        owner = np.empty(len(labels), dtype=np.int64)
        for c in classes:
            members = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(n_clients, float(alpha)))
            cuts = np.floor(np.cumsum(shares)[:-1] * len(members)).astype(np.int64)
            for client, part in enumerate(np.split(members, cuts)):
                owner[part] = client
        sizes = np.bincount(owner, minlength=n_clients)
        if sizes.min() >= min_per_client:
            return [np.flatnonzero(owner == k).astype(np.int64) for k in range(n_clients)]
    raise CosimError(
        f"partition_dirichlet: no draw in max_tries(={max_tries}) gave each of the "
        f"{n_clients} clients min_per_client(={min_per_client}) of the {len(labels)} examples "
        f"with alpha(={alpha}); raise alpha, lower min_per_client or use fewer clients"
    )
