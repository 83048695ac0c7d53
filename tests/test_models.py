import itertools
import math

import pytest
import torch
from torch import nn

from compgen.config import complete_model
from compgen.models import COMPOSITION_OPS, DECODERS, ENCODERS
from compgen.models.blocks import SpatialBroadcastDecoder
from compgen.models.composition import CompositionModel, FixedInterpolation, LearnedInterpolation
from compgen.models.vae import VAE, FactorRegressor, GroundTruthDecoder
from compgen.tasks import TASKS, load_trained
from compgen.tasks import build_model as build_from_config


def conv_channels(module, kind=nn.Conv2d):
    return [m.out_channels for m in module.modules() if isinstance(m, kind)]


@pytest.mark.parametrize(
    "name, channels",
    [
        ("burgess", [32, 32, 32, 32]),
        ("kim", [32, 32, 64, 64]),
        ("abdi", [32, 32, 64, 128, 256]),
        ("montero", [64, 64, 128, 128, 256]),
    ],
)
def test_conv_encoders_follow_spec(name, channels):
    enc = ENCODERS[name]((64, 64, 1), 10)
    assert conv_channels(enc) == channels
    for conv in (m for m in enc.modules() if isinstance(m, nn.Conv2d)):
        assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))
    mu, logvar = enc(torch.rand(2, 1, 64, 64))
    assert mu.shape == logvar.shape == (2, 10)


@pytest.mark.parametrize("name", ["burgess", "kim", "abdi", "montero"])
def test_decoders_mirror_encoders_and_end_with_logits(name):
    dec = DECODERS[name]((64, 64, 3), 10)
    first_linear = next(m for m in dec.modules() if isinstance(m, nn.Linear))
    assert (first_linear.in_features, first_linear.out_features) == (10, 256)
    assert conv_channels(dec, nn.ConvTranspose2d)[-1] == 3
    assert isinstance(list(dec.modules())[-1], nn.ConvTranspose2d)  # no output non-linearity
    assert dec(torch.randn(2, 10)).shape == (2, 3, 64, 64)


def test_spatial_broadcast_decoder():
    dec = DECODERS["sbd"]((64, 64, 3), 6)
    assert isinstance(dec, SpatialBroadcastDecoder)
    assert dec.coords.min() == -1 and dec.coords.max() == 1 and dec.coords.shape == (1, 2, 64, 64)
    convs = [m for m in dec.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs[:4]] == [(64, (5, 5))] * 4
    assert convs[-1].out_channels == 3
    assert dec(torch.randn(1, 6)).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("encoder, decoder", list(itertools.product(sorted(ENCODERS), sorted(DECODERS))))
def test_any_encoder_with_any_decoder(encoder, decoder):
    model = build_model(
        {"task": "unsupervised", "encoder": encoder, "decoder": decoder, "latent_size": 7}, (64, 64, 3), 2
    )
    logits, mu, logvar, z = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 3, 64, 64) and mu.shape == logvar.shape == z.shape == (2, 7)


def test_decoders_start_with_a_linear_map_to_256_units():
    for name in ("burgess", "kim", "abdi", "montero"):
        first = next(m for m in DECODERS[name]((64, 64, 1), 5).modules() if isinstance(m, nn.Linear))
        assert (first.in_features, first.out_features) == (5, 256)
    burgess = [
        m.out_features for m in ENCODERS["burgess"]((64, 64, 1), 5).modules() if isinstance(m, nn.Linear)
    ]
    assert burgess == [256, 256, 10]  # FC256 -> FC256 -> (mu, logvar)


@pytest.mark.parametrize("name", ["abdi", "sbd"])
def test_kaiming_uniform_init(name):
    module = (ENCODERS.get(name) or DECODERS[name])((64, 64, 1), 10)
    for layer in (m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))):
        fan_in = nn.init._calculate_correct_fan(layer.weight, "fan_in")
        bound = math.sqrt(2.0) * math.sqrt(3.0 / fan_in)
        peak = float(layer.weight.detach().abs().max())
        assert 0.9 * bound < peak <= bound and not layer.bias.any()


def build_model(cfg: dict, image_shape, n_factors: int):
    """A model as the study would build it: its config completed with the schema's defaults."""
    return build_from_config(complete_model(cfg), image_shape, n_factors)


# What each task's model maps: (model type, its output on x of 2 images, shape of that output).
OUTPUTS = {
    "unsupervised": (VAE, lambda m, x: m(x)[0], (2, 1, 64, 64)),
    "composition": (
        CompositionModel,
        lambda m, x: m.compose(x, x, torch.eye(4)[:2])["recon_target"],
        (2, 1, 64, 64),
    ),
    "supervised": (FactorRegressor, lambda m, x: m(x), (2, 4)),
    "gt_decoder": (GroundTruthDecoder, lambda m, x: m(torch.randn(2, 4)), (2, 1, 64, 64)),
}


def test_every_registered_task_has_an_output_check():
    assert set(OUTPUTS) == set(TASKS)


@pytest.mark.parametrize(
    "task, arch", list(itertools.product(OUTPUTS, ["burgess", "kim", "abdi", "montero"]))
)
def test_every_task_and_architecture_maps_64x64_inputs(task, arch):
    cfg = {"task": task, "latent_size": 6, **{part: arch for part in TASKS[task].parts}}
    if task == "composition":
        cfg["op"] = "interp"
    model = build_model(cfg, (64, 64, 1), 4).eval()
    kind, output, shape = OUTPUTS[task]
    assert isinstance(model, kind) and output(model, torch.rand(2, 1, 64, 64)).shape == shape


def test_vae_samples_in_training_and_uses_mean_in_eval():
    model = build_model({"task": "unsupervised", "encoder": "kim", "decoder": "kim"}, (64, 64, 1), 3)
    x = torch.rand(3, 1, 64, 64)
    model.eval()
    _, mu, _, z = model(x)
    assert torch.equal(z, mu)
    model.train()
    _, mu, _, z = model(x)
    assert not torch.equal(z, mu)


def test_fixint_copies_unit_d_from_command():
    op = FixedInterpolation(n_factors=3, latent_size=5)
    z_ref, z_cmd = torch.zeros(3, 5), torch.ones(3, 5)
    out = op(z_ref, z_cmd, torch.eye(3))
    expected = torch.zeros(3, 5)
    expected[torch.arange(3), torch.arange(3)] = 1
    assert torch.equal(out, expected)


def test_fixint_needs_a_unit_per_factor():
    with pytest.raises(ValueError, match="n_factors"):
        build_model(
            {"task": "composition", "op": "fixint", "encoder": "kim", "decoder": "kim", "latent_size": 4},
            (64, 64, 1),
            5,
        )


def test_interp_gate_mixes_between_latents():
    op = LearnedInterpolation(n_factors=2, latent_size=4)
    z_ref, z_cmd = torch.zeros(5, 4), torch.ones(5, 4)
    out = op(z_ref, z_cmd, torch.eye(2)[[0, 1, 0, 1, 0]])
    assert out.shape == (5, 4) and bool(((out > 0) & (out < 1)).all())


@pytest.mark.parametrize("op", ["linear", "mlp"])
def test_learned_ops_shapes_and_gradients(op):
    torch.manual_seed(0)
    module = COMPOSITION_OPS[op](n_factors=3, latent_size=5)
    z_ref, z_cmd = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    out = module(z_ref, z_cmd, torch.eye(3)[[0, 1, 2, 0]])
    assert out.shape == (4, 5)
    out.pow(2).sum().backward()
    assert z_ref.grad.abs().sum() > 0 and z_cmd.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    # the action matters: another factor gives another result
    assert not torch.allclose(module(z_ref, z_cmd, torch.eye(3)[[1, 1, 1, 1]]), out)


def test_composition_model_compose_and_backbone_access():
    model = build_model(
        {"task": "composition", "op": "interp", "encoder": "kim", "decoder": "kim"}, (64, 64, 1), 3
    )
    assert isinstance(model, CompositionModel) and isinstance(model.vae, VAE)
    model.eval()
    ref, cmd = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64)
    out = model.compose(ref, cmd, torch.eye(3)[:2])
    assert set(out) == {
        "recon_ref",
        "recon_cmd",
        "recon_target",
        "mu_ref",
        "logvar_ref",
        "mu_cmd",
        "logvar_cmd",
        "z_ref",
        "z_cmd",
        "z_target",
    }
    assert torch.equal(out["z_ref"], out["mu_ref"])  # the mean at evaluation
    mu, _ = model.encode(ref)
    assert torch.allclose(out["mu_ref"], mu, atol=1e-5)
    assert torch.allclose(out["recon_ref"], model.decode(mu), atol=1e-4)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="allowed"):
        build_from_config(
            {"task": "unsupervised", "encoder": "nope", "decoder": "kim", "latent_size": 2}, (64, 64, 1), 2
        )
    with pytest.raises(ValueError, match="allowed"):
        build_from_config(
            {"task": "composition", "op": "nope", "encoder": "kim", "decoder": "kim", "latent_size": 4},
            (64, 64, 1),
            2,
        )


def test_load_trained_round_trip(tmp_path):
    cfg = complete_model({"task": "unsupervised", "encoder": "kim", "decoder": "kim", "latent_size": 3})
    model = build_model(cfg, (64, 64, 1), 2)
    payload = {
        "state_dict": model.state_dict(),
        "model_config": cfg,
        "image_shape": [64, 64, 1],
        "factor_names": ["a", "b"],
        "factor_sizes": [2, 2],
        "best_epoch": 1,
    }
    torch.save(payload, tmp_path / "model.pt")
    loaded, got = load_trained(tmp_path / "model.pt")
    x = torch.rand(2, 1, 64, 64)
    model.eval()
    assert torch.equal(loaded(x)[0], model(x)[0]) and got["factor_names"] == ["a", "b"]
