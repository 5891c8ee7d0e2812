import numpy as np
import pytest

from cosim.errors import CosimError
from llm_split.partition import partition_dirichlet, partition_iid


def _assert_disjoint_covering(parts, n):
    joined = np.concatenate(parts)
    assert joined.dtype == np.int64
    assert np.array_equal(np.sort(joined), np.arange(n))  # covering, and no index twice


def _mean_tv_to_global(parts, labels):
    n_classes = labels.max() + 1
    overall = np.bincount(labels, minlength=n_classes) / len(labels)
    tv = [0.5 * np.abs(np.bincount(labels[p], minlength=n_classes) / len(p) - overall).sum() for p in parts]
    return float(np.mean(tv))


@pytest.mark.parametrize("n, k", [(100, 7), (10, 10), (1001, 3)])
def test_iid_disjoint_covering_balanced(n, k):
    parts = partition_iid(n, k, np.random.default_rng(0))
    assert len(parts) == k
    _assert_disjoint_covering(parts, n)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_iid_is_random_and_reproducible():
    a = partition_iid(50, 5, np.random.default_rng(1))
    b = partition_iid(50, 5, np.random.default_rng(1))
    c = partition_iid(50, 5, np.random.default_rng(2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert not np.array_equal(a[0], np.arange(10))  # not a contiguous block


def test_iid_more_clients_than_examples_is_refused():
    with pytest.raises(CosimError, match=r"n_clients\(=11\)"):
        partition_iid(10, 11, np.random.default_rng(0))


LABELS = np.repeat(np.arange(5), 400)  # 5 balanced classes, 2000 examples


def test_dirichlet_disjoint_covering():
    for alpha in (0.05, 1.0, 1000.0):
        parts = partition_dirichlet(LABELS, 10, alpha, np.random.default_rng(0))
        assert len(parts) == 10
        _assert_disjoint_covering(parts, len(LABELS))


def test_dirichlet_small_alpha_skews_large_alpha_does_not():
    rng = np.random.default_rng(0)
    skewed = np.mean([_mean_tv_to_global(partition_dirichlet(LABELS, 10, 0.1, rng), LABELS) for _ in range(5)])
    uniform = np.mean([_mean_tv_to_global(partition_dirichlet(LABELS, 10, 100.0, rng), LABELS) for _ in range(5)])
    assert skewed > 0.5    # most clients hold one or two classes
    assert uniform < 0.1   # every client close to the 20% per class overall
    iid = _mean_tv_to_global(partition_iid(len(LABELS), 10, rng), LABELS)
    assert abs(uniform - iid) < 0.06


def test_dirichlet_respects_min_per_client():
    # With these numbers a single draw leaves some client under 8 examples
    # about 60% of the time, so the resampling is what the test exercises.
    labels = np.repeat(np.arange(2), 100)
    unconstrained = [min(map(len, partition_dirichlet(labels, 8, 1.0, np.random.default_rng(seed), min_per_client=0)))
                     for seed in range(10)]
    assert min(unconstrained) < 8
    for seed in range(10):
        parts = partition_dirichlet(labels, 8, 1.0, np.random.default_rng(seed), min_per_client=8)
        assert min(len(p) for p in parts) >= 8
        _assert_disjoint_covering(parts, len(labels))


def test_dirichlet_reproducible():
    a = partition_dirichlet(LABELS, 4, 0.5, np.random.default_rng(9))
    b = partition_dirichlet(LABELS, 4, 0.5, np.random.default_rng(9))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_dirichlet_gives_up_with_a_clear_error():
    labels = np.repeat(np.arange(2), 50)
    with pytest.raises(CosimError, match=r"max_tries\(=5\).*min_per_client\(=12\)"):
        partition_dirichlet(labels, 8, 0.01, np.random.default_rng(0), min_per_client=12, max_tries=5)


@pytest.mark.parametrize("kwargs, needle", [
    ({"alpha": 0.0}, "alpha(=0.0)"),
    ({"alpha": 1.0, "min_per_client": 300}, "min_per_client(=300)"),
    ({"alpha": 1.0, "max_tries": 0}, "max_tries(=0)"),
])
def test_dirichlet_bad_arguments_name_themselves(kwargs, needle):
    with pytest.raises(CosimError) as info:
        partition_dirichlet(LABELS, 10, rng=np.random.default_rng(0), **kwargs)
    assert needle in str(info.value)
