import matplotlib.image as mpimg
import numpy as np

from compgen.summary.figure import ROW_HEIGHT, plot_group_composite


def _fake_arrays(path, rng):
    images = (rng.random((8, 64, 64, 1)) * 255).astype(np.uint8)
    classes = np.stack([rng.integers(0, 3, 600), rng.integers(0, 8, 600)], axis=1)
    np.savez(
        path,
        recon_train_inputs=images,
        recon_train_outputs=images[::-1].copy(),
        recon_test_inputs=images,
        recon_test_outputs=images,
        latents=rng.normal(size=(600, 10)),
        latent_classes=classes,
        latent_is_train=~((classes[:, 0] == 0) & (classes[:, 1] > 3)),
        factor_names=np.asarray(["shape", "posX"]),
        factor_axes=np.asarray([0, 1]),
        latent_axes=np.asarray([3, 5]),
    )


def test_composite_has_one_row_per_panel_and_is_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    panels = []
    for k in range(3):
        _fake_arrays(tmp_path / f"a{k}.npz", rng)
        panels.append({"label": f"run {k}", "arrays": tmp_path / f"a{k}.npz"})
    outputs = [tmp_path / "group.png", tmp_path / "group.pdf"]
    plot_group_composite(panels, outputs, title="three runs")
    image = mpimg.imread(outputs[0])
    assert image.shape[0] == round(100 * (0.9 + ROW_HEIGHT * 3)) and image.shape[1] == 1300
    assert outputs[1].read_bytes().startswith(b"%PDF")
    first = [p.read_bytes() for p in outputs]
    plot_group_composite(panels, outputs, title="three runs")
    assert [p.read_bytes() for p in outputs] == first
