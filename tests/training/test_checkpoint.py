"""genrec.training.checkpoint: the fingerprint check names exactly the fields that differ, saves are
atomic and create their folders, and a checkpoint holding numpy/RNG state loads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from genrec.training.checkpoint import CheckpointMismatch, atomic_save, check_fingerprint, load  # noqa: E402


def test_equal_fingerprints_pass_whatever_the_key_order_and_json_types():
    check_fingerprint(Path("c"), {"b": (1, 2), "a": {"x": Path("/d")}}, {"a": {"x": "/d"}, "b": [1, 2]})


def test_message_names_each_differing_field_once_with_both_values():
    with pytest.raises(CheckpointMismatch) as e:
        check_fingerprint(Path("ck/trainer_state.pt"), {"seed": 1, "same": 3, "module": {"hidden": 16}},
                          {"seed": 2, "same": 3, "module": {"hidden": 8}, "lr": 0.1})
    assert str(e.value) == (
        "ck/trainer_state.pt was written for another model configuration or training data (lr: checkpoint None, "
        "now 0.1; module.hidden: checkpoint 16, now 8; seed: checkpoint 1, now 2); delete it or pass another "
        "checkpoint_dir to start afresh")


def test_a_field_present_on_one_side_only_is_a_difference():
    with pytest.raises(CheckpointMismatch, match=r"\(extra: checkpoint 1, now None\)"):
        check_fingerprint(Path("c"), {"a": 1, "extra": 1}, {"a": 1})


def test_at_most_six_fields_are_listed():
    found = {f"k{i}": 0 for i in range(8)}
    with pytest.raises(CheckpointMismatch) as e:
        check_fingerprint(Path("c"), found, {k: 1 for k in found})
    msg = str(e.value)
    assert all(f"k{i}: checkpoint 0, now 1" in msg for i in range(6))
    assert "k6" not in msg and "k7" not in msg


def test_atomic_save_creates_missing_folders_and_leaves_no_temp_file(tmp_path):
    import torch

    target = tmp_path / "a" / "b" / "trainer_state.pt"
    atomic_save({"w": torch.ones(2)}, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["trainer_state.pt"]
    assert torch.equal(load(target)["w"], torch.ones(2))


def test_load_restores_numpy_and_rng_state(tmp_path):
    """Checkpoints carry numpy arrays and generator states (exact resume), which torch's
    ``weights_only`` loading refuses: ``load`` must read full pickles (our own files only)."""
    rng = np.random.default_rng(3)
    state = {"np_rng": rng.bit_generator.state, "order": np.arange(5)}
    atomic_save(state, tmp_path / "s.pt")
    back = load(tmp_path / "s.pt")
    assert back["np_rng"] == rng.bit_generator.state and np.array_equal(back["order"], np.arange(5))
