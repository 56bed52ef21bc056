"""The chunked pool view and the streaming top-k selector."""

import os

import numpy as np
import pytest
import torch

from skal.data import Pool, as_pool, is_lazy_pool
from skal.utils.topk import TopK, select_top, tiebreak_keys, tiebreak_seed
from skal.query import select_top as query_select_top


# --------------------------------------------------------------------------- Pool
@pytest.fixture
def memmap_pool(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "pool.npy", mode="w+", dtype=np.uint8,
                                  shape=(50, 1, 6, 6))
    X[:] = np.arange(50, dtype=np.uint8)[:, None, None, None]
    X.flush()
    return np.load(tmp_path / "pool.npy", mmap_mode="r")


class ImageDataset(torch.utils.data.Dataset):
    """(x, y) items, as torchvision datasets return them; counts the items read."""

    def __init__(self, n):
        self.n, self.reads = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads += 1
        return torch.full((1, 6, 6), float(i)), i % 3


def test_memmap_chunks_cover_the_pool_in_order(memmap_pool):
    pool = Pool(memmap_pool, chunk_size=16)
    assert len(pool) == 50 and pool.n_chunks == 4 and pool.sample_shape == (1, 6, 6)
    starts, rows = zip(*pool.chunks())
    assert starts == (0, 16, 32, 48)
    assert [len(r) for r in rows] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.concatenate(rows), np.asarray(memmap_pool))
    assert rows[0].dtype == np.uint8  # rows as stored; the estimators convert them
    np.testing.assert_array_equal(pool.take([7, 3])[:, 0, 0, 0], [7, 3])


def test_dataset_pool_reads_only_the_chunk(memmap_pool):
    data = ImageDataset(10)
    pool = Pool(data, chunk_size=4)
    assert pool.sample_shape == (1, 6, 6)
    data.reads = 0
    start, rows = next(pool.chunks(which=[2]))
    assert start == 8 and rows.shape == (2, 1, 6, 6) and data.reads == 2  # x of (x, y) items
    np.testing.assert_array_equal(rows[:, 0, 0, 0], [8, 9])
    np.testing.assert_array_equal(pool.take([5, 1])[:, 0, 0, 0], [5, 1])


def test_subset_and_default_chunk_size(memmap_pool):
    pool = Pool(memmap_pool)
    assert pool.chunk_size == 2048  # small images: 2,048 rows
    assert Pool(np.zeros((3, 3, 96, 96))).chunk_size == 64 * 2**20 // (4 * 3 * 96 * 96)  # 64 MiB
    assert Pool(np.zeros((3, 3, 512, 512))).chunk_size == 256  # at least 256 rows
    sub = Pool(memmap_pool, chunk_size=3).subset([40, 2, 9, 11])
    assert len(sub) == 4 and sub.chunk_size == 3
    np.testing.assert_array_equal(np.concatenate([r for _, r in sub.chunks()])[:, 0, 0, 0],
                                  [40, 2, 9, 11])
    np.testing.assert_array_equal(sub.subset([3, 0]).take([0, 1])[:, 0, 0, 0], [11, 40])
    assert as_pool(sub) is sub


def test_lists_tensors_and_pil_images():
    assert Pool([[1, 2], [3, 4], [5, 6]]).read(1, 3).tolist() == [[3, 4], [5, 6]]
    assert Pool(["a", "b", "c"]).take([2, 0]).tolist() == ["c", "a"]
    t = torch.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(Pool(t).take([2]), [[8, 9, 10, 11]])
    PIL = pytest.importorskip("PIL.Image")
    images = [PIL.fromarray(np.full((5, 4, 3), i, dtype=np.uint8)) for i in range(3)]
    rows = Pool(images).read(0, 3)
    assert rows.shape == (3, 3, 5, 4) and rows[2, 0, 0, 0] == 2  # (H, W, C) -> (C, H, W)


def test_is_lazy_pool(memmap_pool):
    from skorch.dataset import Dataset as SkorchDataset

    assert is_lazy_pool(memmap_pool) and is_lazy_pool(ImageDataset(3))
    assert is_lazy_pool(Pool(np.zeros((2, 2))))
    assert not is_lazy_pool(np.zeros((2, 2)))
    assert not is_lazy_pool(SkorchDataset(np.zeros((2, 2)), np.zeros(2)))  # skorch's own


def test_pool_bad_input():
    with pytest.raises(TypeError, match="X_pool must be an array-like of samples.*got dict"):
        Pool({"x": 1})
    with pytest.raises(TypeError, match="got int"):
        Pool(3)
    with pytest.raises(ValueError, match=r"The 'chunk_size' parameter must be None or an int in "
                                         r"the range \[1, inf\)\. Got 0 instead\."):
        Pool(np.zeros((3, 2)), chunk_size=0)
    with pytest.raises(IndexError, match=r"indices must lie in \[0, 3\)"):
        Pool(np.zeros((3, 2)), indices=[0, 3])
    with pytest.raises(ValueError, match="indices must be a 1-D array of ints"):
        Pool(np.zeros((3, 2)), indices=[0.5])

    class Ragged(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.zeros((1, 4 + i, 4))

    with pytest.raises(ValueError, match="must all have the same shape; rows 0..1"):
        Pool(Ragged()).read(0, 2)

    class Dicts(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return {"image": np.zeros(3)}

    with pytest.raises(TypeError, match=r"got a dict with keys \['image'\]"):
        Pool(Dicts()).read(0, 1)


# --------------------------------------------------------------------------- top-k
def _reference(scores, k, seed):
    """Sort the whole array: -score first, then the tie-breaking key."""
    keys = tiebreak_keys(np.arange(len(scores)), seed)
    return np.lexsort((keys, -np.asarray(scores, dtype=float)))[:k]


def _streamed(scores, k, seed, chunk):
    top = TopK(k, seed)
    for start in range(0, len(scores), chunk):
        top.push(scores[start:start + chunk], np.arange(start, min(start + chunk, len(scores))))
    return top.result()


@pytest.mark.parametrize("random_state", [None, 0, 7])
@pytest.mark.parametrize("chunk", [1, 3, 17, 1000])
@pytest.mark.parametrize("k", [1, 5, 40, 200])
def test_streaming_topk_equals_select_top_with_ties(random_state, chunk, k):
    rng = np.random.default_rng(k * 31 + chunk)
    scores = rng.integers(0, 6, size=200).astype(float)  # many ties
    scores[rng.integers(0, 200, 10)] = -0.0  # -0.0 ties with 0.0
    expected = query_select_top(scores, k, random_state=random_state)
    positions, best = _streamed(scores, k, tiebreak_seed(random_state), chunk)
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_array_equal(best, scores[expected])
    np.testing.assert_array_equal(expected, _reference(scores, k, tiebreak_seed(random_state)))


def test_shards_merge_to_the_same_top_k():
    """Per-shard top k, merged, is the global top k (what skal.distributed.merge_topk relies on)."""
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=301).astype(float)
    seed = tiebreak_seed(11)
    merged = TopK(25, seed)
    for r in range(3):  # three "processes", strided chunks of 10
        local = TopK(25, seed)
        for start in range(r * 10, 301, 30):
            local.push(scores[start:start + 10], np.arange(start, min(start + 10, 301)))
        merged.push(*local.result()[::-1])
    np.testing.assert_array_equal(merged.result()[0], query_select_top(scores, 25, 11))


def test_without_random_state_ties_go_to_the_lowest_position():
    scores = np.array([1.0, 2.0, 2.0, 0.0, 2.0])
    np.testing.assert_array_equal(query_select_top(scores, 3), [1, 2, 4])
    np.testing.assert_array_equal(select_top(scores, 3), [1, 2, 4])


def test_seeded_keys_are_a_permutation_and_reproducible():
    keys = tiebreak_keys(np.arange(100_000), tiebreak_seed(5))
    assert len(np.unique(keys)) == 100_000  # a bijection: no two positions share a key
    np.testing.assert_array_equal(tiebreak_keys([3, 99_999], tiebreak_seed(5)), keys[[3, 99_999]])
    gen_a, gen_b = np.random.default_rng(2), np.random.default_rng(2)
    assert tiebreak_seed(gen_a) == tiebreak_seed(gen_b)
    assert tiebreak_seed(np.random.RandomState(1)) == tiebreak_seed(np.random.RandomState(1))
    # the seeded order of tied scores is not position order, and depends on the seed
    a = query_select_top(np.zeros(50), 10, random_state=0)
    assert not np.array_equal(a, np.arange(10))
    assert not np.array_equal(a, query_select_top(np.zeros(50), 10, random_state=1))


def test_topk_errors():
    top = TopK(2)
    with pytest.raises(ValueError, match="contain NaN"):
        top.push(np.array([0.1, np.nan]), np.arange(2))
    with pytest.raises(ValueError, match="same length; got 2 and 3"):
        top.push(np.zeros(2), np.arange(3))


def _mapped_rss_kib(path):
    """Resident KiB of this process's mappings of ``path`` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if line[:1] in "0123456789abcdef" and "-" in line.split()[0]:
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux /proc needed")
def test_memmap_chunks_do_not_stay_resident(tmp_path):
    """Rows of a whole-file memmap are read from the file, so its pages never count in the
    process's RSS (slicing the mapping leaves every page read resident: the file's size)."""
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(4096, 1, 32, 32))
    X[:] = np.arange(4096, dtype=np.int64).reshape(-1, 1, 1, 1) % 251
    del X
    memmap = np.load(path, mmap_mode="r")
    pool = Pool(memmap, chunk_size=512)
    total = 0
    for start, rows in pool.chunks():
        total += int(rows[:, 0, 0, 0].astype(np.int64).sum())
        assert rows.flags.writeable
    assert total == int((np.arange(4096) % 251).sum())
    np.testing.assert_array_equal(pool.take([4095, 7])[:, 0, 0, 0], [4095 % 251, 7])
    np.testing.assert_array_equal(Pool(memmap, indices=[9, 3]).read(0, 2)[:, 0, 0, 0], [9, 3])
    assert _mapped_rss_kib(path) < 64  # 4 MiB read, none of it resident in this process
    np.asarray(memmap[:4096]).sum()  # what reading through the mapping does
    assert _mapped_rss_kib(path) > 3000


def test_memmap_views_and_copy_on_write_are_sliced(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(20).reshape(10, 2))
    view = np.load(path, mmap_mode="r")[2:8]
    np.testing.assert_array_equal(Pool(view).read(0, 2), [[4, 5], [6, 7]])
    cow = np.load(path, mmap_mode="c")
    cow[0] = -1  # private to this process: must be seen
    np.testing.assert_array_equal(Pool(cow).read(0, 1), [[-1, -1]])
