import time

import numpy as np
import pytest
import torch

from compgen.training.batches import (
    TripletSampler,
    action_onehot,
    heldout_triplets,
    images_to_tensor,
    position_lookup,
    to_float,
)

SIZES = (3, 4, 5, 6)


def split_classes():
    """A recomb2range-like hole: factor 0 == 1 never with factor 2 > 2."""
    all_classes = np.stack(np.unravel_index(np.arange(np.prod(SIZES)), SIZES), axis=1)
    held_out = (all_classes[:, 0] == 1) & (all_classes[:, 2] > 2)
    return all_classes[~held_out], all_classes[held_out]


def as_codes(rows: np.ndarray) -> set:
    return {tuple(r) for r in rows}


def test_triplets_are_valid_training_compositions():
    train, _ = split_classes()
    sampler = TripletSampler(train, SIZES, torch.Generator().manual_seed(0))
    t = sampler.sample(5000)
    ref, cmd, target, d = (train[x.numpy()] if i < 3 else x.numpy() for i, x in enumerate(t))
    rows = np.arange(len(d))
    differs = ref != target
    assert (differs.sum(1) == 1).all() and differs[rows, d].all()
    assert (cmd[rows, d] == target[rows, d]).all()
    assert as_codes(ref) | as_codes(cmd) | as_codes(target) <= as_codes(train)
    assert set(np.unique(d)) == set(range(len(SIZES)))
    # the hole is respected: a reference with factor 0 == 1 never gets factor 2 above 2
    assert not ((target[:, 0] == 1) & (target[:, 2] > 2)).any()
    # commands really resample the other factors
    assert (cmd != target).any(1).mean() > 0.9


def test_factor_without_alternative_is_never_chosen():
    sizes = (2, 3)
    train = np.array([[0, 0], [0, 1], [0, 2], [1, 0]])  # (1, 0) has no other value of factor 1
    sampler = TripletSampler(train, sizes, torch.Generator().manual_seed(1))
    t = sampler.sample(2000)
    from_lonely = t.ref.numpy() == 3
    assert from_lonely.any() and (t.d.numpy()[from_lonely] == 0).all()


def test_sampler_is_reproducible_from_generator_state():
    train, _ = split_classes()
    a = TripletSampler(train, SIZES, torch.Generator().manual_seed(7)).sample(100)
    b = TripletSampler(train, SIZES, torch.Generator().manual_seed(7)).sample(100)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=False))


def test_sampler_refuses_when_no_triplet_exists():
    with pytest.raises(ValueError, match="no training code"):
        TripletSampler(np.array([[0, 0], [1, 1]]), (2, 2), torch.Generator())


def test_sampling_is_vectorised():
    sizes = (3, 6, 40, 32, 32)
    classes = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1)
    train = classes[~((classes[:, 0] == 0) & (classes[:, 3] > 15))]
    sampler = TripletSampler(train, sizes, torch.Generator().manual_seed(0))
    sampler.sample(10)
    start = time.perf_counter()
    sampler.sample(10_000)
    assert time.perf_counter() - start < 0.5


def test_heldout_triplets_target_held_out_codes():
    train, test = split_classes()
    t = heldout_triplets(SIZES, train, test, 3000, torch.Generator().manual_seed(0))
    ref, cmd, target = (np.stack(np.unravel_index(x, SIZES), axis=1) for x in t[:3])
    d, rows = t.d, np.arange(len(t.d))
    assert as_codes(target) <= as_codes(test)
    assert as_codes(ref) | as_codes(cmd) <= as_codes(train) | as_codes(test)
    differs = ref != target
    assert (differs.sum(1) == 1).all() and differs[rows, d].all()
    assert (cmd[rows, d] == target[rows, d]).all()
    assert t.ref.dtype == np.int64 and set(np.unique(d)) == set(range(len(SIZES)))


def test_image_helpers():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[1, :, :, 2] = 255
    x = to_float(images_to_tensor(images, "cpu"))
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32 and x[1, 2].min() == 1 and x[1, :2].max() == 0
    assert torch.equal(action_onehot(torch.tensor([2, 0]), 3), torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    lookup = position_lookup(np.array([5, 2]), 7)
    assert lookup.tolist() == [-1, -1, 1, -1, -1, 0, -1]
