import matplotlib.image as mpimg
import numpy as np
import torch

from compgen.analysis.figures import plot_traversals
from compgen.analysis.traversals import N_STEPS, latent_traversals
from compgen.config import complete_model
from compgen.tasks import build_model


def test_traversals_sweep_each_latent_in_kl_order(tmp_path):
    torch.manual_seed(0)
    model = build_model(
        complete_model({"task": "unsupervised", "encoder": "kim", "decoder": "kim", "latent_size": 4}),
        (64, 64, 1),
        2,
    )
    model.eval()
    images = torch.rand(32, 1, 64, 64)
    out = latent_traversals(model, images, "bce")
    assert (
        out["traversal_images"].shape == (4, N_STEPS, 64, 64, 1) and out["traversal_images"].dtype == np.uint8
    )
    assert sorted(out["traversal_latents"].tolist()) == [0, 1, 2, 3]
    assert np.all(np.diff(out["traversal_kl"]) <= 0)
    # Only the swept latent changes along a row: the first and last images of a row differ.
    assert all(not np.array_equal(row[0], row[-1]) for row in out["traversal_images"])
    mu, _ = model.encode(images[:1])
    latent = int(out["traversal_latents"][0])
    values = out["traversal_values"][0]
    assert values[0] < values[-1] and np.isclose(values, np.sort(values)).all()
    with torch.no_grad():
        code = mu.clone()
        code[0, latent] = float(values[3])
        expected = (
            (torch.sigmoid(model.decode(code)).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        )
    assert np.array_equal(out["traversal_images"][0, 3], expected[0])
    plot_traversals(
        out["traversal_images"], out["traversal_latents"], out["traversal_kl"], tmp_path / "t.png"
    )
    assert mpimg.imread(tmp_path / "t.png").shape[0] == round(100 * (0.3 + 0.75 * 4))
