import itertools
import time
from collections import Counter

import numpy as np
import pytest
import torch

from compgen.batches import (
    CodeTables,
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
    return {tuple(int(v) for v in r) for r in rows}


def original_commands(valid: set, sizes, target: tuple, d: int) -> dict:
    """Exact distribution of the original's command code for (target, d), enumerated.

    Follows `src/dataset/tuples.py` of mmrl/lost-in-latent-space step by step: the command starts
    as the target's code (line 191) and every factor f != d, in index order (lines 192-194), goes
    through `sample_factor` (lines 209-230): the values of f keeping the current code valid (lines
    212-218); if more than one, all but the current value, uniformly (lines 221, 227-230); else the
    current value (lines 223-225).
    """
    dist = {tuple(target): 1.0}
    for f in range(len(sizes)):
        if f == d:
            continue
        step = {}
        for code, p in dist.items():
            ok = [v for v in range(sizes[f]) if code[:f] + (v,) + code[f + 1 :] in valid]
            if len(ok) > 1:
                ok.remove(code[f])
            for v in ok:
                new = code[:f] + (v,) + code[f + 1 :]
                step[new] = step.get(new, 0.0) + p / len(ok)
        dist = step
    return dist


def assert_commands_match(valid: set, sizes, cmd: np.ndarray, target: np.ndarray, d: np.ndarray) -> None:
    """Per (target, d): the empirical command distribution is the enumerated one (4.5 sigma per code)."""
    groups = {}
    for key, c in zip(
        zip(map(tuple, target.tolist()), d.tolist(), strict=True), map(tuple, cmd.tolist()), strict=True
    ):
        groups.setdefault(key, Counter())[c] += 1
    for (tgt, dd), counts in groups.items():
        n, expected = sum(counts.values()), original_commands(valid, sizes, tgt, dd)
        assert set(counts) <= set(expected), (tgt, dd)
        for code, p in expected.items():
            assert abs(counts[code] / n - p) <= 4.5 * np.sqrt(p * (1 - p) / n) + 1e-12, (tgt, dd, code)


def assert_command_steps_away(valid: set, sizes, ref, cmd, target, d) -> None:
    """cmd has the target's d; in every other factor f it differs from the reference unless, at f's
    turn (factors before f already resampled, after f still the target's), no other valid value exists."""
    rows = np.arange(len(d))
    assert (cmd[rows, d] == target[rows, d]).all()
    for f in range(len(sizes)):
        current = np.concatenate([cmd[:, :f], target[:, f:]], axis=1)
        alternative = np.zeros(len(d), dtype=bool)
        for v in range(sizes[f]):
            moved = current.copy()
            moved[:, f] = v
            alternative |= (v != current[:, f]) & np.array([tuple(m) in valid for m in moved.tolist()])
        same = cmd[:, f] == ref[:, f]
        assert not (same & alternative & (d != f)).any(), f
        # with no alternative the factor stays: the command keeps the reference's value
        assert (cmd[:, f][~alternative & (d != f)] == ref[:, f][~alternative & (d != f)]).all(), f


# The 3x3x2 grid with a hole: (2, 2, *) and (0, 2, 1) are not in the training subset.
TINY = (3, 3, 2)
TINY_HOLE = {(2, 2, 0), (2, 2, 1), (0, 2, 1)}


def tiny_train() -> np.ndarray:
    return np.array([c for c in itertools.product(*map(range, TINY)) if c not in TINY_HOLE])


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
    # commands step away from the reference in every factor they can (the original's procedure)
    assert_command_steps_away(as_codes(train), SIZES, ref, cmd, target, d)


@pytest.mark.parametrize(
    "target, d, expected",
    [
        # ref (0,0,0), d = 2. Start (0,0,1). f0: (0,0,1) (1,0,1) (2,0,1) valid, drop 0 -> 1 or 2, 1/2
        # each. f1 from (1,0,1): (1,*,1) all valid, drop 0 -> 1 or 2, 1/2 each; from (2,0,1):
        # (2,2,1) held out, drop 0 -> 1 surely. f1 depends on the resampled f0 (sequential).
        ((0, 0, 1), 2, {(1, 1, 1): 1 / 4, (1, 2, 1): 1 / 4, (2, 1, 1): 1 / 2}),
        # ref (1,0,0) or (2,0,0), d = 0. Start (0,0,0). f1: (0,*,0) all valid, drop 0 -> 1 or 2.
        # f2 from (0,1,0): (0,1,1) valid, drop 0 -> 1; from (0,2,0): (0,2,1) held out, the only
        # valid value is the current one, kept -> the command shares f2 with the reference.
        ((0, 0, 0), 0, {(0, 1, 1): 1 / 2, (0, 2, 0): 1 / 2}),
    ],
)
def test_command_distribution_by_hand(target, d, expected):
    """Hand-derived from `src/dataset/tuples.py` (mmrl/lost-in-latent-space) lines 190-194 and
    `sample_factor`, lines 209-230, on the 3x3x2 grid with a hole; 200k seeded draws."""
    train = tiny_train()
    assert original_commands(as_codes(train), TINY, target, d) == pytest.approx(expected)
    row = {code: i for i, code in enumerate(map(tuple, train.tolist()))}
    n = 200_000
    cmd = CodeTables(train, TINY).command(
        torch.full((n,), row[target]), torch.full((n,), d), torch.Generator().manual_seed(0)
    )
    counts = Counter(map(tuple, train[cmd.numpy()].tolist()))
    assert set(counts) == set(expected)
    for code, p in expected.items():
        assert abs(counts[code] / n - p) < 0.005  # 4.5 sigma at p = 1/2


def test_sampler_commands_follow_the_original():
    """Every (target, d) of the tiny grid: the sampler's commands as the enumerated original
    (`src/dataset/tuples.py` lines 190-194, 209-230), whatever the reference draw."""
    train = tiny_train()
    t = TripletSampler(train, TINY, torch.Generator().manual_seed(3)).sample(300_000)
    ref, cmd, target = (train[x.numpy()] for x in t[:3])
    assert as_codes(ref) | as_codes(cmd) | as_codes(target) <= as_codes(train)
    assert_command_steps_away(as_codes(train), TINY, ref, cmd, target, t.d.numpy())
    assert_commands_match(as_codes(train), TINY, cmd, target, t.d.numpy())


def test_heldout_commands_follow_the_original_on_the_pool():
    """Held-out targets; ref and cmd drawn as in training with train + test codes as the valid ones."""
    train = tiny_train()
    test = np.array([(2, 2, 0), (2, 2, 1)])  # (0, 2, 1) is in neither: a hole of the pool
    pool = as_codes(train) | as_codes(test)
    t = heldout_triplets(TINY, train, test, 100_000, torch.Generator().manual_seed(4))
    ref, cmd, target = (np.stack(np.unravel_index(x, TINY), axis=1) for x in t[:3])
    assert as_codes(target) <= as_codes(test) and as_codes(ref) | as_codes(cmd) <= pool
    assert_command_steps_away(pool, TINY, ref, cmd, target, t.d)
    assert_commands_match(pool, TINY, cmd, target, t.d)


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
    assert_command_steps_away(as_codes(train) | as_codes(test), SIZES, ref, cmd, target, d)
    assert t.ref.dtype == np.int64 and set(np.unique(d)) == set(range(len(SIZES)))


def test_image_helpers():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[1, :, :, 2] = 255
    x = to_float(images_to_tensor(images, "cpu"))
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32 and x[1, 2].min() == 1 and x[1, :2].max() == 0
    assert torch.equal(action_onehot(torch.tensor([2, 0]), 3), torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    lookup = position_lookup(np.array([5, 2]), 7)
    assert lookup.tolist() == [-1, -1, 1, -1, -1, 0, -1]
