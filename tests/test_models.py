import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from compgen.config import complete_model
from compgen.models import COMPOSITION_OPS, DECODERS, ENCODERS
from compgen.models.blocks import SpatialBroadcastDecoder
from compgen.models.cascade import CascadeVAE
from compgen.models.composition import CompositionModel, FixedInterpolation, LearnedInterpolation
from compgen.models.lie import LieGroupVAE
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


# Every encoder with one decoder and every decoder with one encoder: an encoder's only contract is
# (mu, logvar) of latent_size, a decoder's a latent_size input, so any pair of them composes.
PAIRS = sorted({(e, "kim") for e in ENCODERS} | {("kim", d) for d in DECODERS})


@pytest.mark.parametrize("encoder, decoder", PAIRS)
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
    "retrain": (VAE, lambda m, x: m(x)[0], (2, 1, 64, 64)),
    "cascade": (CascadeVAE, lambda m, x: m(x)[0], (2, 1, 64, 64)),
    "lievae": (LieGroupVAE, lambda m, x: m(x).logits, (2, 1, 64, 64)),
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
    if task == "retrain":
        cfg.update(base="vae", retrain="decoder")
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


# -- architectures copied from the originals (NeurIPS vaes.py, ICLR cnnvae.py / decoders.py) ----------


def describe(module: nn.Module) -> list[str]:
    """The layers in order, one short string each: what the originals' layer lists say."""
    out = []
    for m in module.modules():
        if isinstance(m, nn.Linear):
            out.append(f"linear {m.in_features}>{m.out_features}" + ("" if m.bias is not None else " nobias"))
        elif isinstance(m, nn.ConvTranspose2d):
            assert (m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1))
            out.append(f"tconv {m.in_channels}>{m.out_channels}" + ("" if m.bias is not None else " nobias"))
        elif isinstance(m, nn.Conv2d):
            if m.padding == "same":
                assert m.stride == (1, 1)
                out.append(f"conv {m.in_channels}>{m.out_channels} k{m.kernel_size[0]} same")
            else:
                assert (m.kernel_size, m.stride, m.padding) == ((4, 4), (2, 2), (1, 1))
                out.append(f"conv {m.in_channels}>{m.out_channels}")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            assert m.affine and m.track_running_stats
            out.append(f"bn{1 if isinstance(m, nn.BatchNorm1d) else 2}d {m.num_features} m{m.momentum}")
        elif isinstance(m, nn.ReLU):
            out.append("relu")
        elif isinstance(m, nn.Tanh):
            out.append("tanh")
        elif isinstance(m, nn.Flatten):
            out.append("flatten")
        elif isinstance(m, nn.Unflatten):
            out.append("unflatten " + "x".join(map(str, m.unflattened_size)))
    return out


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


L = 10  # latent size of the checks below; an encoder's head gives 2 * L = 20 (mu, logvar)

# Parameter counts by hand from the originals' layer lists, for c image channels and latent L.
# conv / tconv (4, 2, 1): cin * cout * 16 + cout (bias); linear: in * out + out; BatchNorm: 2 * features.
ENCODER_PARAMS = {
    # vaes.py burgess_v2: conv 32, 32, 64, 64 -> 64 x 4 x 4 -> FC 256, FC 256 -> head 2L
    "burgess_v2": lambda c: (
        (c * 32 * 16 + 32)
        + (32 * 32 * 16 + 32)
        + (32 * 64 * 16 + 64)
        + (64 * 64 * 16 + 64)
        + (64 * 4 * 4 * 256 + 256)
        + (256 * 256 + 256)
        + (256 * 2 * L + 2 * L)
    ),
    # vaes.py higgins: flatten 64 * 64 * c -> 1200 -> 1200 -> head 2L
    "higgins": lambda c: (64 * 64 * c * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 2 * L + 2 * L),
    # vaes.py kim_bn: kim (conv 32, 32, 64, 64, FC 256) plus BatchNorm2d after each conv's ReLU
    "kim_bn": lambda c: (
        (c * 32 * 16 + 32)
        + (32 * 32 * 16 + 32)
        + (32 * 64 * 16 + 64)
        + (64 * 64 * 16 + 64)
        + (64 * 4 * 4 * 256 + 256)
        + (256 * 2 * L + 2 * L)
        + 2 * (32 + 32 + 64 + 64)
    ),
}
DECODER_PARAMS = {
    # transpose of burgess_v2: L -> 256 -> 256 -> 1024, tconv 64>64, 64>32, 32>32, 32>c
    "burgess_v2": lambda c: (
        (L * 256 + 256)
        + (256 * 256 + 256)
        + (256 * 1024 + 1024)
        + (64 * 64 * 16 + 64)
        + (64 * 32 * 16 + 32)
        + (32 * 32 * 16 + 32)
        + (32 * c * 16 + c)
    ),
    # vaes.py sbd3: (L + 2 coordinate channels) -> 64 -> 64 -> c, all 5x5
    "sbd3": lambda c: ((L + 2) * 64 * 25 + 64) + (64 * 64 * 25 + 64) + (64 * c * 25 + c),
    # vaes.py sbd4: one more 64 -> 64 5x5 conv
    "sbd4": lambda c: ((L + 2) * 64 * 25 + 64) + 2 * (64 * 64 * 25 + 64) + (64 * c * 25 + c),
    # vaes.py higgins: L -> 1200 -> 1200 -> 1200 -> 64 * 64 * c
    "higgins": lambda c: (L * 1200 + 1200) + 2 * (1200 * 1200 + 1200) + (1200 * 64 * 64 * c + 64 * 64 * c),
    # decoders.py kim_bn: L -> 256 (+BN), 256 -> 1024 no bias (+BN), tconvs no bias 64>64, 64>64,
    # 64>32 (+BN each), 32>c with bias
    "kim_bn": lambda c: (
        (L * 256 + 256)
        + 2 * 256
        + 256 * 1024
        + 2 * 1024
        + 64 * 64 * 16
        + 2 * 64
        + 64 * 64 * 16
        + 2 * 64
        + 64 * 32 * 16
        + 2 * 32
        + (32 * c * 16 + c)
    ),
    # vaes.py kim_bn's decoder: kim's (L -> 256 -> 1024, tconv 64>64, 64>32, 32>32, 32>c) + 3 BN2d
    "kim_bn_vae": lambda c: (
        (L * 256 + 256)
        + (256 * 1024 + 1024)
        + (64 * 64 * 16 + 64)
        + (64 * 32 * 16 + 32)
        + (32 * 32 * 16 + 32)
        + (32 * c * 16 + c)
        + 2 * (64 + 32 + 32)
    ),
    # decoders.py deep: L -> 512 -> 512 -> 1024 -> 1024, tconv 64>64, 64>64, 64>32, 32>c
    "deep": lambda c: (
        (L * 512 + 512)
        + (512 * 512 + 512)
        + (512 * 1024 + 1024)
        + (1024 * 1024 + 1024)
        + 2 * (64 * 64 * 16 + 64)
        + (64 * 32 * 16 + 32)
        + (32 * c * 16 + c)
    ),
    # decoders.py deep_bn: deep with BN after every hidden ReLU and no bias but on the first linear
    "deep_bn": lambda c: (
        (L * 512 + 512)
        + 2 * 512
        + 512 * 512
        + 2 * 512
        + 512 * 1024
        + 2 * 1024
        + 1024 * 1024
        + 2 * 1024
        + 2 * (64 * 64 * 16 + 2 * 64)
        + (64 * 32 * 16 + 2 * 32)
        + 32 * c * 16
    ),
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(ENCODER_PARAMS))
def test_copied_encoders_shapes_and_parameter_counts(name, channels):
    torch.manual_seed(0)
    enc = ENCODERS[name]((64, 64, channels), L)
    assert n_params(enc) == ENCODER_PARAMS[name](channels)
    mu, logvar = enc(torch.rand(2, channels, 64, 64))
    assert mu.shape == logvar.shape == (2, L)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(DECODER_PARAMS))
def test_copied_decoders_shapes_and_parameter_counts(name, channels):
    torch.manual_seed(0)
    dec = DECODERS[name]((64, 64, channels), L)
    assert n_params(dec) == DECODER_PARAMS[name](channels)
    assert dec(torch.randn(2, L)).shape == (2, channels, 64, 64)


def test_kim_decoder_is_the_iclr_one():
    # decoders.py kim: linear 256, linear 4*4*64, unflatten, tconv 64, 32, 32, then the image's channels
    assert describe(DECODERS["kim"]((64, 64, 1), L)) == [
        "linear 10>256", "relu", "linear 256>1024", "relu", "unflatten 64x4x4",
        "tconv 64>64", "relu", "tconv 64>32", "relu", "tconv 32>32", "relu", "tconv 32>1",
    ]  # fmt: skip


def test_burgess_v2_encoder_and_its_transpose():
    assert describe(ENCODERS["burgess_v2"]((64, 64, 1), L)) == [
        "conv 1>32", "relu", "conv 32>32", "relu", "conv 32>64", "relu", "conv 64>64", "relu",
        "flatten", "linear 1024>256", "relu", "linear 256>256", "relu", "linear 256>20",
    ]  # fmt: skip
    # init_lgm without decoder_layers: transpose_specs of the encoder + linear(latent), reversed
    assert describe(DECODERS["burgess_v2"]((64, 64, 3), L)) == [
        "linear 10>256", "relu", "linear 256>256", "relu", "linear 256>1024", "relu", "unflatten 64x4x4",
        "tconv 64>64", "relu", "tconv 64>32", "relu", "tconv 32>32", "relu", "tconv 32>3",
    ]  # fmt: skip


def test_higgins_mlp():
    assert describe(ENCODERS["higgins"]((64, 64, 1), L)) == [
        "flatten", "linear 4096>1200", "relu", "linear 1200>1200", "relu", "linear 1200>20",
    ]  # fmt: skip
    dec = DECODERS["higgins"]((32, 48, 2), L)  # any image size and channels
    assert describe(dec) == [
        "linear 10>1200", "tanh", "linear 1200>1200", "tanh", "linear 1200>1200", "tanh",
        "linear 1200>3072", "unflatten 2x32x48",
    ]  # fmt: skip
    z = torch.randn(3, L)
    out = dec(z)
    assert out.shape == (3, 2, 32, 48)
    # the flat output in C, H, W order, as the original's reshape(*inputs.shape) of NCHW images
    assert torch.equal(out.reshape(3, -1), dec.net[:-1](z))
    mu, _ = ENCODERS["higgins"]((32, 48, 2), L)(torch.rand(3, 2, 32, 48))
    assert mu.shape == (3, L)


def test_kim_bn_encoder_batch_norm_after_each_conv_relu():
    # vaes.py kim_bn: conv, relu, batch_norm(momentum 0.001, affine, track_running_stats), x4; FC 256 plain
    assert describe(ENCODERS["kim_bn"]((64, 64, 1), L)) == [
        "conv 1>32", "relu", "bn2d 32 m0.001", "conv 32>32", "relu", "bn2d 32 m0.001",
        "conv 32>64", "relu", "bn2d 64 m0.001", "conv 64>64", "relu", "bn2d 64 m0.001",
        "flatten", "linear 1024>256", "relu", "linear 256>20",
    ]  # fmt: skip


def test_kim_bn_decoders():
    # decoders.py kim_bn (ICLR ground-truth decoder): torch's default momentum, bias=False as written
    assert describe(DECODERS["kim_bn"]((64, 64, 1), L)) == [
        "linear 10>256", "relu", "bn1d 256 m0.1", "linear 256>1024 nobias", "relu", "bn1d 1024 m0.1",
        "unflatten 64x4x4",
        "tconv 64>64 nobias", "relu", "bn2d 64 m0.1", "tconv 64>64 nobias", "relu", "bn2d 64 m0.1",
        "tconv 64>32 nobias", "relu", "bn2d 32 m0.1", "tconv 32>1",
    ]  # fmt: skip
    # vaes.py kim_bn's own decoder (the NeurIPS VAE): kim's layers, BN momentum 0.001 after the hidden tconvs
    assert describe(DECODERS["kim_bn_vae"]((64, 64, 1), L)) == [
        "linear 10>256", "relu", "linear 256>1024", "relu", "unflatten 64x4x4",
        "tconv 64>64", "relu", "bn2d 64 m0.001", "tconv 64>32", "relu", "bn2d 32 m0.001",
        "tconv 32>32", "relu", "bn2d 32 m0.001", "tconv 32>1",
    ]  # fmt: skip


def test_deep_decoders():
    assert describe(DECODERS["deep"]((64, 64, 1), L)) == [
        "linear 10>512", "relu", "linear 512>512", "relu", "linear 512>1024", "relu",
        "linear 1024>1024", "relu", "unflatten 64x4x4",
        "tconv 64>64", "relu", "tconv 64>64", "relu", "tconv 64>32", "relu", "tconv 32>1",
    ]  # fmt: skip
    assert describe(DECODERS["deep_bn"]((64, 64, 1), L)) == [
        "linear 10>512", "relu", "bn1d 512 m0.1", "linear 512>512 nobias", "relu", "bn1d 512 m0.1",
        "linear 512>1024 nobias", "relu", "bn1d 1024 m0.1", "linear 1024>1024 nobias", "relu",
        "bn1d 1024 m0.1", "unflatten 64x4x4",
        "tconv 64>64 nobias", "relu", "bn2d 64 m0.1", "tconv 64>64 nobias", "relu", "bn2d 64 m0.1",
        "tconv 64>32 nobias", "relu", "bn2d 32 m0.1", "tconv 32>1 nobias",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "name, layers",
    [
        # vaes.py sbd3: spatbroad(64, 64), conv 64 k5 same, relu, conv 64 k5 same, relu, conv C k5 same
        ("sbd3", ["conv 12>64 k5 same", "relu", "conv 64>64 k5 same", "relu", "conv 64>3 k5 same"]),
        # vaes.py sbd4: three hidden convs
        (
            "sbd4",
            [
                "conv 12>64 k5 same",
                "relu",
                "conv 64>64 k5 same",
                "relu",
                "conv 64>64 k5 same",
                "relu",
                "conv 64>3 k5 same",
            ],
        ),
        # this project's earlier sbd (not in the original): four hidden convs, a 1x1 output conv
        ("sbd", ["conv 12>64 k5 same", "relu"] + ["conv 64>64 k5 same", "relu"] * 3 + ["conv 64>3 k1 same"]),
    ],
)
def test_spatial_broadcast_layers(name, layers):
    dec = DECODERS[name]((64, 64, 3), L)
    assert isinstance(dec, SpatialBroadcastDecoder) and describe(dec) == layers


def test_spatial_broadcast_input_is_the_originals():
    # src/models/sbd.py: cat([z tiled at the output size, x, y]), x = linspace(-1, 1, W) along the
    # width, y = linspace(-1, 1, H) along the height (meshgrid 'xy'), no enlargement and no crop.
    dec = DECODERS["sbd3"]((64, 64, 1), 4)
    seen = []
    dec.net[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    z = torch.randn(2, 4)
    dec(z)
    (x,) = seen
    assert x.shape == (2, 6, 64, 64)
    assert torch.equal(x[:, :4], z[:, :, None, None].expand(-1, -1, 64, 64))
    line = torch.linspace(-1, 1, 64)
    assert torch.equal(x[:, 4], line[None, None, :].expand(2, 64, -1))  # x: varies along the width
    assert torch.equal(x[:, 5], line[None, :, None].expand(2, -1, 64))  # y: along the height


# -- gt_decoder inputs ------------------------------------------------------------------------------


def gt_data(grid, classes):
    """What the gt_decoder task reads of TrainingData: the grid, standardised factors, images."""
    from types import SimpleNamespace

    codes = torch.as_tensor(grid.standardised(grid.values(classes)), dtype=torch.float32)
    return SimpleNamespace(
        grid=grid, factors=codes, images=lambda rows: torch.zeros(len(rows), 1, 64, 64), recon="bce"
    )


def test_gt_decoder_raw_inputs_are_the_factor_values():
    from compgen.datasets.sprites import DSPRITES_GRID as grid
    from compgen.tasks import get_task

    task = get_task("gt_decoder")
    # one image per dSprites scale (0.5 ... 1), other factors at varied classes
    classes = np.array([[s % 3, s, 7 * s, 5 * s, 31 - s] for s in range(6)])
    data, rows = gt_data(grid, classes), torch.arange(6)
    raw = torch.as_tensor(grid.values(classes), dtype=torch.float32)
    torch.manual_seed(0)
    model = build_model({"task": "gt_decoder", "decoder": "kim", "inputs": "raw"}, grid.image_shape, 5)
    assert model.inputs == "raw" and not model.value_stats_set
    seen = []
    model.decoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    task.training_loss(model, rows, data, None, 0)
    model.eval()
    task.validation_loss(model, rows, data, None)
    latents, logits = task.encode(model, data.images(rows), data.factors)
    assert len(seen) == 3 and logits.shape == (6, 1, 64, 64)
    for fed in [*seen, latents]:
        assert torch.allclose(fed, raw, atol=1e-5)
        assert torch.allclose(fed[:, 1], torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 1.0]), atol=1e-6)  # scale
    assert float(seen[0][:, 2].max()) > 5  # orientation in radians, not standardised
    # the statistics are saved with the weights: a fresh model loaded from them feeds the same values
    fresh = build_model({"task": "gt_decoder", "decoder": "kim", "inputs": "raw"}, grid.image_shape, 5)
    with pytest.raises(RuntimeError, match="set_value_stats"):
        fresh(data.factors)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    assert fresh.value_stats_set and torch.equal(fresh(data.factors), model(data.factors))


def test_gt_decoder_standardised_inputs_by_default():
    from compgen.datasets.sprites import DSPRITES_GRID as grid
    from compgen.tasks import get_task

    cfg = complete_model({"task": "gt_decoder", "decoder": "kim"})
    assert cfg["inputs"] == "standardised"
    classes = np.array([[0, 0, 0, 0, 0], [2, 5, 39, 31, 31]])
    data = gt_data(grid, classes)
    model = build_from_config(cfg, grid.image_shape, 5)
    seen = []
    model.decoder.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    get_task("gt_decoder").training_loss(model, torch.arange(2), data, None, 0)
    assert torch.equal(seen[0], data.factors) and float(seen[0].abs().max()) <= 0.5
    assert "value_mean" not in model.state_dict()  # standardised checkpoints are unchanged
