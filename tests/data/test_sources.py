"""Data sources: image folders, .npy / .npz files, torch Datasets and PIL lists."""

import os

import numpy as np
import pytest
from PIL import Image, features

from skal.data import as_image_array, load_array, load_image_folder, load_images


def _save(path, array, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    """cat/ (2 gray PNGs), dog/ (1 RGB JPEG, 1 RGB PNG in a nested folder), all 6x4 (H x W)."""
    root = tmp_path / "pets"
    _save(root / "cat" / "a.png", np.full((6, 4), 10, np.uint8))
    _save(root / "cat" / "b.png", np.full((6, 4), 20, np.uint8))
    _save(root / "dog" / "c.jpg", np.full((6, 4, 3), 200, np.uint8))
    _save(root / "dog" / "deep" / "d.png", np.full((6, 4, 3), 100, np.uint8))
    (root / "dog" / "notes.txt").write_text("not an image")
    _save(root / "cat" / ".hidden.png", np.zeros((3, 3), np.uint8))
    return root


def test_image_folder_layout_gives_labels_paths_and_channels_first_uint8(folder):
    X, y, paths = load_image_folder(folder)
    assert X.shape == (4, 3, 6, 4) and X.dtype == np.uint8  # one RGB image -> all RGB
    assert y.tolist() == ["cat", "cat", "dog", "dog"]
    assert [os.path.relpath(p, folder) for p in paths] == [
        "cat/a.png", "cat/b.png", "dog/c.jpg", os.path.join("dog", "deep", "d.png")]
    assert X[0, :, 0, 0].tolist() == [10, 10, 10]  # gray replicated to RGB
    assert abs(int(X[2, 0, 0, 0]) - 200) <= 2  # JPEG, lossy


def test_flat_folder_is_unlabelled_and_resized_to_one_size(tmp_path):
    _save(tmp_path / "x" / "1.png", np.zeros((10, 20), np.uint8))
    _save(tmp_path / "x" / "2.png", np.full((7, 7), 255, np.uint8))
    X, y, paths = load_image_folder(tmp_path / "x", image_size=(5, 8), color="gray")
    assert y is None and len(paths) == 2
    assert X.shape == (2, 1, 5, 8)
    assert X[1].min() == 255
    X, _, _ = load_image_folder(tmp_path / "x", image_size=3, color="rgb")
    assert X.shape == (2, 3, 3, 3)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp_is_read(tmp_path):
    _save(tmp_path / "w" / "a.webp", np.full((4, 4, 3), 50, np.uint8), fmt="WEBP")
    X, _, _ = load_image_folder(tmp_path / "w")
    assert X.shape == (1, 3, 4, 4)


def test_sizes_that_differ_are_an_error_naming_two_files(tmp_path):
    _save(tmp_path / "s" / "small.png", np.zeros((4, 4), np.uint8))
    _save(tmp_path / "s" / "big.png", np.zeros((8, 6), np.uint8))
    with pytest.raises(ValueError, match=r"2 different sizes, e.g. 8x6 .*big.png.* and 4x4 "
                                         r".*small.png.*Pass image_size="):
        load_image_folder(tmp_path / "s")


def test_corrupt_files_are_reported_together_by_name(tmp_path):
    root = tmp_path / "c"
    _save(root / "good.png", np.zeros((4, 4), np.uint8))
    (root / "junk.png").write_bytes(b"this is not a png")
    good = (root / "good.png").read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"(?s)2 of the 3 files could not be read as images:"
                                         r".*junk.png.*truncated.png"):
        load_image_folder(root)
    with pytest.warns(UserWarning, match=r"(?s)junk.png.*truncated.png.*left out"):
        X, y, paths = load_image_folder(root, on_error="skip")
    assert [os.path.basename(p) for p in paths] == ["good.png"] and X.shape == (1, 1, 4, 4)


def test_folder_errors(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match="does not exist or is not a folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no PNG, JPEG or WebP image"):
        load_image_folder(tmp_path / "empty")
    _save(folder / "loose.png", np.zeros((6, 4), np.uint8))
    with pytest.raises(ValueError, match=r"both 1 image\(s\) at its top level and class "
                                         "sub-folders"):
        load_image_folder(folder)
    with pytest.raises(ValueError, match="The 'image_size' parameter of load_image_folder must be"):
        load_image_folder(folder, image_size=(0, 3))
    with pytest.raises(ValueError, match="The 'color' parameter of load_image_folder must be None, "
                                         "'gray' or 'rgb'. Got 'cmyk' instead."):
        load_image_folder(folder, color="cmyk")
    with pytest.raises(ValueError, match="The 'on_error' parameter"):
        load_image_folder(folder, on_error="ignore")


def test_npy_is_memory_mapped_and_channels_last_is_moved(tmp_path):
    X = np.arange(2 * 5 * 6 * 3, dtype=np.uint8).reshape(2, 5, 6, 3)  # (n, H, W, C)
    np.save(tmp_path / "a.npy", X)
    loaded, y = load_array(tmp_path / "a.npy")
    assert y is None and loaded.shape == (2, 3, 5, 6)
    assert isinstance(loaded.base, np.memmap) or isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, X.transpose(0, 3, 1, 2))
    first, _ = load_array(tmp_path / "a.npy", channels="first")  # taken as given
    assert first.shape == (2, 5, 6, 3)


def test_npz_with_labels_and_gray_images(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 7, 7), np.float32), labels=np.arange(4))
    X, y = load_array(tmp_path / "d.npz")
    assert X.shape == (4, 1, 7, 7) and y.tolist() == [0, 1, 2, 3]
    X2, y2 = load_images(tmp_path / "d.npz")
    assert X2.shape == X.shape and y2.tolist() == y.tolist()


def test_array_file_errors(tmp_path):
    np.savez(tmp_path / "bad.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match=r"holds the arrays \['weights'\], none of them named"):
        load_array(tmp_path / "bad.npz")
    np.savez(tmp_path / "len.npz", X=np.zeros((3, 4, 4)), y=np.zeros(2))
    with pytest.raises(ValueError, match=r"holds 3 images but labels of shape \(2,\)"):
        load_array(tmp_path / "len.npz")
    np.save(tmp_path / "flat.npy", np.zeros((3, 16)))
    with pytest.raises(ValueError, match=r"shape \(3, 16\); expected images"):
        load_array(tmp_path / "flat.npy")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(ValueError, match="is not a .npy or .npz file"):
        load_array(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="neither an image folder nor a .npy / .npz file"):
        load_images(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="The 'channels' parameter of load_array must be"):
        load_array(tmp_path / "flat.npy", channels="middle")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="could not be read as a numpy file"):
        load_array(tmp_path / "broken.npy")


def test_load_images_reads_a_folder(folder):
    X, y = load_images(folder)
    assert X.shape == (4, 3, 6, 4) and y.tolist() == ["cat", "cat", "dog", "dog"]


# ---------------------------------------------------------------------------- in memory
def test_torchvision_fake_data_gives_images_and_labels():
    torchvision = pytest.importorskip("torchvision")
    data = torchvision.datasets.FakeData(size=6, image_size=(3, 8, 5), num_classes=3,
                                         random_offset=0)
    X, y = as_image_array(data, return_labels=True)
    assert X.shape == (6, 3, 8, 5) and X.dtype == np.uint8
    assert y.dtype.kind == "i" and len(y) == 6
    np.testing.assert_array_equal(X[2], np.asarray(data[2][0]).transpose(2, 0, 1))


def test_image_folder_dataset_with_to_tensor_gives_float(folder):
    torchvision = pytest.importorskip("torchvision")
    import torch
    from torchvision.transforms import v2

    os.remove(folder / "cat" / ".hidden.png")  # torchvision reads hidden files too
    to_float = v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)])
    data = torchvision.datasets.ImageFolder(str(folder), transform=to_float)
    X, y = as_image_array(data, return_labels=True)
    assert X.shape == (4, 3, 6, 4) and X.dtype == np.float32
    assert y.tolist() == [0, 0, 1, 1]
    assert 0 <= X.min() and X.max() <= 1


def test_list_of_pil_images_mixed_modes_become_rgb():
    images = [Image.new("L", (4, 3), 7), Image.new("RGB", (4, 3), (1, 2, 3))]
    X = as_image_array(images)
    assert X.shape == (2, 3, 3, 4) and X.dtype == np.uint8
    assert X[0, :, 0, 0].tolist() == [7, 7, 7] and X[1, :, 0, 0].tolist() == [1, 2, 3]
    X = as_image_array([Image.new("L", (2, 2)), Image.new("1", (2, 2))])
    assert X.shape == (2, 1, 2, 2)


def test_ragged_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"X holds images of 2 different shapes: item 0 is "
                                         r"1x4x4 and item 2 is 1x4x5 \(C x H x W\).*resize"):
        as_image_array([Image.new("L", (4, 4)), Image.new("L", (4, 4)), Image.new("L", (5, 4))])
    torchvision = pytest.importorskip("torchvision")
    import torch

    class Ragged(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.zeros(3, 8, 8 + i), i

    with pytest.raises(ValueError, match="item 0 is 3x8x8 and item 1 is 3x8x9"):
        as_image_array(Ragged())
    del torchvision


def test_other_input_passes_through_and_empty_dataset_errors():
    import torch

    X = np.zeros((2, 1, 3, 3))
    assert as_image_array(X) is X
    tensor = torch.zeros(2, 1, 3, 3)
    assert as_image_array(tensor) is tensor  # tensors are not Datasets
    assert as_image_array([[1, 2]]) == [[1, 2]]
    with pytest.raises(ValueError, match="X is an empty TensorDataset"):
        as_image_array(torch.utils.data.TensorDataset(torch.zeros(0, 1, 2, 2)))


def test_items_that_are_not_images_are_an_error():
    import torch

    data = torch.utils.data.TensorDataset(torch.zeros(3, 5))  # items are 1-tuples of (5,)
    with pytest.raises(ValueError, match=r"Item 0 is not an image: got Tensor of shape \(5,\)"):
        as_image_array(data)
    images = torch.utils.data.TensorDataset(torch.zeros(3, 1, 4, 4))
    assert as_image_array(images).shape == (3, 1, 4, 4)
