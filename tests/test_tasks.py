"""The supervised controls through analysis: the regression's own R², the ground-truth decoder's reconstructions."""

import numpy as np
import pytest
import yaml

from compgen.analysis.arrays import load_arrays
from compgen.study import Study, StudyError
from compgen.training.run import train_run
from conftest import analyse_toy, merged, validated
from test_engine import make_run


def analyse(dataset, split, tmp_path, task, epochs, lr):
    train_run(dataset, split, make_run(task, epochs=epochs, lr=lr), tmp_path / "run", tmp_path / "ckpt")
    scores = analyse_toy(dataset, split, tmp_path / "run", tmp_path)
    return scores, load_arrays(tmp_path / "arrays.npz")


def test_supervised_regression_is_scored_by_its_own_r2(data, tmp_path):
    scores, arrays = analyse(*data, tmp_path, "supervised", epochs=8, lr=1e-3)
    assert np.isnan(scores["recon_train"]) and np.isnan(scores["recon_test"])
    assert set(scores["r2_train"]) == set(scores["r2_test"]) == {"x", "y", "size"}
    assert min(scores["r2_train"].values()) > 0.5
    assert np.isfinite(scores["r2_test_mean"]) and np.isfinite(scores["dci_disentanglement"])
    assert np.isfinite(scores["dci_paper_disentanglement"]) and scores["factors_scored"] == ["x", "y", "size"]
    assert np.isfinite(scores["dci_iclr_disentanglement"]) and np.isfinite(scores["dci_iclr_completeness"])
    assert arrays["importance_iclr"].shape == arrays["importance_paper"].shape == (3, 3)
    assert arrays["latents"].shape[1] == 3  # predicted standardised factors
    assert arrays["recon_train_inputs"].shape[0] == arrays["recon_train_outputs"].shape[0] == 0


def test_gt_decoder_is_scored_on_reconstructions_only(data, tmp_path):
    scores, arrays = analyse(*data, tmp_path, "gt_decoder", epochs=2, lr=1e-3)
    assert 0 < scores["recon_train"] < np.inf and 0 < scores["recon_test"] < np.inf
    assert (
        np.isnan(scores["dci_disentanglement"])
        and np.isnan(scores["dci_paper_disentanglement"])
        and np.isnan(scores["dci_iclr_disentanglement"])
        and np.isnan(scores["mig"])
        and np.isnan(scores["r2_test_mean"])
    )
    assert arrays["recon_test_outputs"].shape == arrays["recon_test_inputs"].shape == (3, 64, 64, 1)
    assert arrays["latents"].min() >= -0.5 and arrays["latents"].max() <= 0.5  # standardised factor inputs


def test_supervised_model_refuses_a_vae_loss(root):
    config = merged(
        yaml.safe_load((root / "config/conditions.yaml").read_text()),
        yaml.safe_load((root / "config/demo.yaml").read_text()),
    )
    name = config["experiments"][0]["models"][0]
    config["models"][name] = {"task": "supervised", "loss": "betavae"}
    with pytest.raises(StudyError, match="does not apply"):
        Study(validated(config))
