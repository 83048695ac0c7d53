"""Bad data: a dataset or split file that is broken or does not fit is refused, naming the file and
the fault."""

import json
import shutil

import h5py
import numpy as np
import pytest

from compgen.analysis.evaluate import analyse_run
from compgen.conditions import Condition, SplitError, load_split, write_split
from compgen.config import complete_model, complete_training
from compgen.datasets import dataset_grid
from compgen.datasets.prepare import prepare_dataset
from compgen.datasets.store import DatasetError, check_dataset
from compgen.training.run import train_run
from conftest import load_test_config

CORNER = Condition(
    name="corner", family="recomb2range", test=({"factor": "x", "gt": 0.5}, {"factor": "y", "gt": 0.5})
)
# A run as the study hands it to training: model and training sections filled in by the schema.
_RUN = load_test_config("bad_data_run")
RUN = {**_RUN, "model": complete_model(_RUN["model"]), "training": complete_training(_RUN["training"])}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A 256-image circles dataset with its split: the files each case breaks a copy of."""
    folder = tmp_path_factory.mktemp("good")
    prepare_dataset("circles", {"source": "procedural", "subsample": {"x": 2, "y": 2}}, folder / "circles.h5")
    grid = check_dataset(folder / "circles.h5")
    write_split(grid, CORNER, "circles", folder / "corner.npz", folder / "corner.json")
    return folder


def broken_copy(good, tmp_path, edit) -> str:
    path = tmp_path / "circles.h5"
    shutil.copy(good / "circles.h5", path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return str(path)


def replace(f: h5py.File, key: str, data: np.ndarray) -> None:
    del f[key]
    f.create_dataset(key, data=data)


def test_the_good_files_pass(good):
    grid = check_dataset(good / "circles.h5")
    train, test = load_split(good / "corner.npz", grid, json.loads((good / "corner.json").read_text()))
    assert grid.n == 256 and train.size + test.size == 256


def test_truncated_hdf5_is_refused(good, tmp_path):
    data = (good / "circles.h5").read_bytes()
    path = tmp_path / "circles.h5"
    path.write_bytes(data[: len(data) // 2])  # as a copy cut short by a full disk or a killed transfer
    with pytest.raises(DatasetError, match=r"circles\.h5: not a readable HDF5 file"):
        check_dataset(path)


def test_images_of_the_wrong_shape_are_refused(good, tmp_path):
    path = broken_copy(good, tmp_path, lambda f: replace(f, "images", f["images"][:, ::2, ::2, :]))
    expected = r"circles\.h5: 'images' has shape \(256, 32, 32, 3\), expected \(256, 64, 64, 3\)"
    with pytest.raises(DatasetError, match=expected):
        check_dataset(path)


def test_images_of_the_wrong_dtype_are_refused(good, tmp_path):
    path = broken_copy(good, tmp_path, lambda f: replace(f, "images", f["images"][:].astype(np.float32)))
    with pytest.raises(DatasetError, match=r"circles\.h5: 'images' has dtype float32, expected uint8"):
        check_dataset(path)


def test_labels_that_do_not_form_the_grid_are_refused(good, tmp_path):
    def shuffle_rows(f):
        classes = f["factor_classes"][:]
        f["factor_classes"][:] = classes[np.random.default_rng(0).permutation(len(classes))]

    path = broken_copy(good, tmp_path, shuffle_rows)
    expected = r"circles\.h5: 'factor_classes' do not form the \(16, 16\) grid in C order"
    with pytest.raises(DatasetError, match=expected):
        check_dataset(path)


def test_one_swapped_row_pair_is_found(good, tmp_path):
    """The check reads strided rows; on a small grid that is every row, so one swap is enough."""

    def swap(f):
        classes = f["factor_classes"][:]
        classes[[10, 200]] = classes[[200, 10]]
        f["factor_classes"][:] = classes

    with pytest.raises(DatasetError, match="row 10 has"):
        check_dataset(broken_copy(good, tmp_path, swap))


def test_nan_in_factor_values_is_refused(good, tmp_path):
    def poison(f):
        values = f["factor_values"][:]
        values[77, 1] = np.nan
        f["factor_values"][:] = values

    with pytest.raises(DatasetError, match=r"circles\.h5: 'factor_values' has NaN for factor\(s\) \['y'\]"):
        check_dataset(broken_copy(good, tmp_path, poison))


def test_factor_values_off_the_grid_are_refused(good, tmp_path):
    def shift(f):
        f["factor_values"][:] = f["factor_values"][:] + 0.01

    with pytest.raises(DatasetError, match=r"'factor_values' of row 0 are"):
        check_dataset(broken_copy(good, tmp_path, shift))


def test_a_split_made_for_another_grid_is_refused(good, tmp_path):
    full = dataset_grid("circles")  # 1,024 images; the dataset has the 256 of the subsampled grid
    write_split(full, CORNER, "circles", tmp_path / "full.npz", tmp_path / "full.json")
    grid = check_dataset(good / "circles.h5")
    expected = r"full\.npz: made for grid sizes \[32, 32\], the dataset has \[16, 16\]"
    with pytest.raises(SplitError, match=expected):
        load_split(tmp_path / "full.npz", grid)


def test_a_split_without_recorded_sizes_is_checked_by_range_and_summary(good, tmp_path):
    """Splits written before the sizes were recorded: indices out of range or a summary of another grid."""
    full = dataset_grid("circles")
    write_split(full, CORNER, "circles", tmp_path / "full.npz", tmp_path / "full.json")
    with np.load(tmp_path / "full.npz", allow_pickle=False) as f:
        np.savez(tmp_path / "old.npz", train=f["train"], test=f["test"])
    grid = check_dataset(good / "circles.h5")
    expected = r"old\.npz: 'train' indices span 0\.\.1007, the dataset has rows 0\.\.255"
    with pytest.raises(SplitError, match=expected):
        load_split(tmp_path / "old.npz", grid)
    summary = json.loads((tmp_path / "full.json").read_text())
    expected = r"old\.npz: its summary records 1024 images on grid \{'x': 32, 'y': 32\}"
    with pytest.raises(SplitError, match=expected):
        load_split(tmp_path / "old.npz", grid, summary)


def test_overlapping_or_repeated_indices_are_refused(good, tmp_path):
    grid = check_dataset(good / "circles.h5")
    np.savez(tmp_path / "overlap.npz", train=np.arange(0, 200), test=np.arange(150, 256), grid_sizes=[16, 16])
    with pytest.raises(SplitError, match="train and test share indices"):
        load_split(tmp_path / "overlap.npz", grid)
    np.savez(tmp_path / "repeat.npz", train=np.array([0, 1, 1]), test=np.array([5]), grid_sizes=[16, 16])
    with pytest.raises(SplitError, match="'train' repeats indices"):
        load_split(tmp_path / "repeat.npz", grid)


def test_a_truncated_split_file_is_refused(good, tmp_path):
    data = (good / "corner.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SplitError, match=r"cut\.npz: not a readable split file"):
        load_split(tmp_path / "cut.npz")


def test_training_checks_its_dataset_before_use(good, tmp_path):
    path = broken_copy(good, tmp_path, lambda f: replace(f, "images", f["images"][:, ::2, ::2, :]))
    with pytest.raises(DatasetError, match="'images' has shape"):
        train_run(path, good / "corner.npz", RUN, tmp_path / "out", tmp_path / "ckpt")
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()


def test_training_checks_its_split_before_use(good, tmp_path):
    write_split(dataset_grid("circles"), CORNER, "circles", tmp_path / "full.npz", tmp_path / "full.json")
    with pytest.raises(SplitError, match="made for grid sizes"):
        train_run(good / "circles.h5", tmp_path / "full.npz", RUN, tmp_path / "out", tmp_path / "ckpt")
    assert not (tmp_path / "out").exists()


def test_analysis_checks_dataset_and_split_before_loading_the_model(good, tmp_path):
    outputs = [tmp_path / "scores.json", tmp_path / "analysis.npz"]
    nan_data = broken_copy(good, tmp_path, lambda f: f["factor_values"].__setitem__((0, 0), np.nan))
    with pytest.raises(DatasetError, match="NaN"):
        analyse_run(nan_data, good / "corner.npz", good / "corner.json", tmp_path / "no_model.pt", *outputs)
    write_split(dataset_grid("circles"), CORNER, "circles", tmp_path / "full.npz", tmp_path / "full.json")
    with pytest.raises(SplitError, match="made for grid sizes"):
        split = (tmp_path / "full.npz", tmp_path / "full.json")
        analyse_run(good / "circles.h5", *split, tmp_path / "no_model.pt", *outputs)
    assert not any(p.exists() for p in outputs)
