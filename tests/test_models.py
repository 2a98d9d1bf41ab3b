"""Networks: shapes at every size, class conditioning, save/load, DiffAugment and EMA."""

from __future__ import annotations

import pytest
import torch

from gan_studio.models import Discriminator, Generator
from gan_studio.models.diffaug import (
    GUIDE_POLICIES,
    color,
    cutout,
    diff_augment,
    parse_policy,
    rotation,
    translation,
)
from gan_studio.models.ema import make_ema, update_ema


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
@pytest.mark.parametrize("n_classes", [1, 4])
def test_shapes(resolution, n_classes):
    G = Generator(resolution, n_classes, width=8, z_dim=16, embed_dim=8)
    D = Discriminator(resolution, n_classes, width=8)
    z, y = torch.randn(2, 16), torch.tensor([0, n_classes - 1])
    x = G(z, y)
    assert x.shape == (2, 3, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1
    out = D(x, y, reconstruct=True)
    assert out.logits.shape == (2, 50)  # two 5x5 patch-logit maps
    targets = D.reconstruction_targets(x, out.part)
    for key, rec in out.reconstructions.items():
        assert rec.shape == targets[key].shape
    assert D(x, y).reconstructions is None


@pytest.mark.parametrize("n_classes", [1, 4])
def test_auxiliary_classifier_head(n_classes):
    """With aux_classifier D also returns class logits (for n > 1 classes), with and without decoders."""
    D = Discriminator(32, n_classes, width=8, aux_classifier=True)
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([0, 0, n_classes - 1])
    for reconstruct in (False, True):
        out = D(x, y, reconstruct=reconstruct)
        if n_classes == 1:
            assert out.class_logits is None and D.classifier is None
        else:
            assert out.class_logits.shape == (3, n_classes)
            out.class_logits.sum().backward()
            assert D.classifier.parametrizations.weight.original.grad is not None
    assert Discriminator(32, 4, width=8)(x, y).class_logits is None  # off by default


def test_large_resolutions_build():
    for resolution in (512, 1024):
        G = Generator(resolution, 2, width=8, z_dim=8, embed_dim=8)
        D = Discriminator(resolution, 2, width=8)
        assert G.sizes[-1] == resolution
        assert D.small_size == 128


def test_fastgan_widths_are_fastgans_discriminator():
    """widths="fastgan" builds FastGAN's own D at 256 px, ndf 64 (its models.py, layer by layer)."""
    D = Discriminator(256, 1, width=64, widths="fastgan")
    big = {size: block.main[0].out_channels for size, block in D.down.items()}
    assert D.stem[0].out_channels == 16  # down_from_big
    assert big == {"128": 32, "64": 64, "32": 128, "16": 256, "8": 512}  # down_4 ... down_64
    assert D.head_big[0].out_channels == 1024  # rf_big
    small = [m.out_channels for m in D.small.modules() if isinstance(m, torch.nn.Conv2d)]
    assert small == [32, 64, 128, 256]  # down_from_small
    decoder_inputs = [d.net[1].conv.in_channels for d in (D.decoder_big, D.decoder_part, D.decoder_small)]
    assert decoder_inputs == [512, 256, 256]
    # The official D has 11,526,160 parameters; ours adds two class-projection embeddings.
    n_params = sum(p.numel() for p in D.parameters())
    assert n_params == 11_526_160 + 1024 + 256
    compact = Discriminator(256, 1, width=64)
    assert sum(p.numel() for p in compact.parameters()) < n_params / 2


@pytest.mark.parametrize("resolution", [32, 128])
def test_fastgan_widths_train_and_round_trip(resolution, tmp_path):
    D = Discriminator(resolution, 3, width=8, widths="fastgan", aux_classifier=True)
    x, y = torch.randn(2, 3, resolution, resolution), torch.tensor([0, 2])
    out = D(x, y, reconstruct=True)
    assert out.logits.shape == (2, 50) and out.class_logits.shape == (2, 3)
    D.save_pretrained(tmp_path / "d")
    D2 = Discriminator.from_pretrained(tmp_path / "d")
    assert D2.widths == "fastgan"
    assert torch.equal(D.eval()(x, y).logits, D2.eval()(x, y).logits)
    with pytest.raises(ValueError, match="compact"):
        Discriminator(32, 1, widths="wide")


@pytest.mark.parametrize("bad", [48, 16, 2048])
def test_bad_resolution_is_refused(bad):
    with pytest.raises(ValueError, match="power of two"):
        Generator(bad, 1)


def test_class_changes_image_and_seed_does_not_leak_across_classes():
    torch.manual_seed(0)
    G = Generator(32, 3, width=8, z_dim=16, embed_dim=8).eval()
    with torch.no_grad():  # give the class embedding a visible effect, as training would
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    z = torch.randn(1, 16).repeat(3, 1)
    x = G(z, torch.tensor([0, 1, 2]), noise_mode="const")
    assert not torch.allclose(x[0], x[1]) and not torch.allclose(x[1], x[2])
    again = G(z[:1], torch.tensor([1]), noise_mode="const")
    assert torch.allclose(again[0], x[1], atol=1e-4)  # only (z, class) decide the image


def test_const_noise_is_batch_independent():
    G = Generator(32, 2, width=8, z_dim=16, embed_dim=8).eval()
    with torch.no_grad():
        for block in G.blocks.values():
            block.noise1.weight.fill_(0.5)
        z = torch.randn(4, 16)
        y = torch.tensor([0, 1, 0, 1])
        together = G(z, y, noise_mode="const")
        alone = torch.cat([G(z[i : i + 1], y[i : i + 1], noise_mode="const") for i in range(4)])
        assert torch.allclose(together, alone, atol=1e-5)
        assert not torch.allclose(G(z, y, noise_mode="random"), together)


def test_save_pretrained_round_trip(tmp_path):
    G = Generator(32, 3, class_names=["a", "b c", "ü"], width=8, z_dim=16, embed_dim=8).eval()
    G.save_pretrained(tmp_path / "g")
    assert (tmp_path / "g" / "config.json").is_file() and (tmp_path / "g" / "model.safetensors").is_file()
    G2 = Generator.from_pretrained(tmp_path / "g").eval()
    assert G2.class_names == ["a", "b c", "ü"] and G2.resolution == 32
    z, y = torch.randn(2, 16), torch.tensor([0, 2])
    assert torch.equal(G(z, y, noise_mode="const"), G2(z, y, noise_mode="const"))
    D = Discriminator(32, 3, width=8).eval()
    D.save_pretrained(tmp_path / "d")
    D2 = Discriminator.from_pretrained(tmp_path / "d").eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(D(x, y).logits, D2(x, y).logits)


def test_class_names_must_match_count():
    with pytest.raises(ValueError, match="class_names"):
        Generator(32, 2, class_names=["only-one"])


def test_diffaugment_policies():
    assert parse_policy("color, translation") == ("color", "translation")
    with pytest.raises(ValueError, match="Unknown augmentation"):
        parse_policy("color,rotate")
    with pytest.raises(ValueError, match="rotation"):  # a guide augmentation, never D's
        parse_policy("color,rotation")
    assert parse_policy("color,rotation", GUIDE_POLICIES) == ("color", "rotation")
    torch.manual_seed(0)
    x = torch.rand(16, 3, 32, 32) * 2 - 1
    # translation moves content: every output pixel is an input pixel of the same image or zero padding
    t = translation(torch.ones(16, 3, 32, 32))
    assert set(t.unique().tolist()) <= {0.0, 1.0}
    assert (t == 0).any() and (t == 1).float().mean() > 0.6
    # cutout zeroes a square of half the image size (less where it is clipped by the border)
    c = cutout(torch.ones(16, 3, 32, 32))
    zero_frac = (c[:, 0] == 0).float().mean(dim=(1, 2))
    assert (zero_frac > 0).all() and (zero_frac <= 0.25 + 1e-6).all()
    # colour changes values but keeps shape; the whole pipeline is differentiable and seeded
    assert color(x).shape == x.shape
    x.requires_grad_(True)
    diff_augment(x, "color,translation,cutout").sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.manual_seed(3)
    a = diff_augment(x.detach(), "color,translation,cutout")
    torch.manual_seed(3)
    b = diff_augment(x.detach(), "color,translation,cutout")
    assert torch.equal(a, b)


def test_rotation_turns_about_the_centre():
    """The guide's rotation: a centred disc is unchanged, an off-centre blob keeps its distance from
    the centre but (for almost every angle) not its place, and gradients flow through it."""
    torch.manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(32.0) - 15.5, torch.arange(32.0) - 15.5, indexing="ij")
    disc = ((rows**2 + cols**2) < 10**2).float().expand(8, 3, 32, 32)
    assert (rotation(disc) - disc).abs().mean() < 0.02
    blob = (((rows - 10) ** 2 + cols**2) < 3**2).float().expand(8, 1, 32, 32).contiguous()
    # Inside the inscribed circle every pixel comes from the image itself (outside it, from its mirror).
    inside = (rows**2 + cols**2) < 15.5**2
    turned = rotation(blob)[:, 0] * inside
    radius = (turned * (rows**2 + cols**2).sqrt()).sum((1, 2)) / turned.sum((1, 2))
    torch.testing.assert_close(radius, torch.full((8,), 10.0), atol=0.8, rtol=0)
    torch.testing.assert_close(turned.sum((1, 2)), blob[:, 0].sum((1, 2)), atol=3.0, rtol=0)  # all of it
    moved = (turned - blob[:, 0]).abs().sum((1, 2)) > 0.5 * blob[0].sum()
    assert moved.sum() >= 7
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    rotation(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_ema_update():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    ema = make_ema(model)
    assert not any(p.requires_grad for p in ema.parameters())
    before = ema[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()(torch.randn(8, 4))  # changes BN running stats
    update_ema(ema, model, decay=0.9)
    assert torch.allclose(ema[0].weight, 0.9 * before + 0.1 * model[0].weight)
    assert torch.equal(ema[1].running_mean, model[1].running_mean)


@pytest.mark.parametrize("size", [4, 8, 16])
def test_upsample_conv_equals_upsample_then_conv(size):
    """The folded transposed convolution is the same function as nearest 2x + 3x3 conv, forward
    and backward, on both sides of the size threshold where the implementation switches."""
    from gan_studio.models.layers import UpsampleConv

    torch.manual_seed(0)
    layer = UpsampleConv(5, 6, sn=False)
    x = torch.randn(2, 5, size, size + 2, requires_grad=True)
    out = layer(x)
    x_ref = x.detach().clone().requires_grad_(True)
    ref = torch.nn.functional.conv2d(
        torch.nn.functional.interpolate(x_ref, scale_factor=2.0, mode="nearest"), layer.conv.weight, padding=1
    )
    assert out.shape == (2, 6, 2 * size, 2 * size + 4)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    grad = torch.randn_like(out)
    (g_x, g_w) = torch.autograd.grad(out, (x, layer.conv.weight), grad)
    (r_x, r_w) = torch.autograd.grad(ref, (x_ref, layer.conv.weight), grad)
    torch.testing.assert_close(g_x, r_x, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(g_w, r_w, rtol=1e-4, atol=1e-4)


def test_group_std_sees_the_spread_inside_each_group_only():
    """Minibatch standard deviation per group of consecutive images: zero for a group of copies,
    positive for a varied group, and D's judgement of an image depends on its group's other
    members but not on other groups."""
    from gan_studio.models.discriminator import group_std

    torch.manual_seed(0)
    same = torch.randn(1, 5, 4, 4).repeat(4, 1, 1, 1)
    varied = torch.randn(4, 5, 4, 4)
    spread = group_std(torch.cat([same, varied]), 4)
    assert spread.shape == (8, 1, 4, 4)
    assert spread[:4].abs().max() < 1e-3 and spread[4:].min() > 0.1
    assert torch.equal(group_std(varied[:3], 2), torch.zeros(3, 1, 4, 4))  # no whole groups: no signal

    D = Discriminator(32, 3, width=8, group_size=2).eval()
    assert D.head_big[0].in_channels == Discriminator(32, 3, width=8).head_big[0].in_channels + 1
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 0, 1, 1])
    base = D(x, y).logits
    changed = x.clone()
    changed[1] = torch.randn(3, 32, 32)  # the first group's second member
    out = D(changed, y).logits
    assert not torch.allclose(out[0], base[0])  # its group mate's judgement moves
    torch.testing.assert_close(out[2:], base[2:])  # the other group's does not
    with pytest.raises(ValueError, match="group_size"):
        Discriminator(32, 3, width=8, group_size=0)


def test_cutout_zeroes_the_square_it_drew():
    """cutout reads its masks from tables made once per size; each image loses exactly the square
    around the centre it drew (clipped by the border), with odd and even square sizes."""
    for h, w in ((32, 32), (17, 23), (9, 8)):
        x = torch.rand(6, 3, h, w) + 1.0  # nothing zero before the cut
        torch.manual_seed(5)
        out = cutout(x)
        torch.manual_seed(5)
        ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
        cy = torch.randint(0, h + (1 - ch % 2), (6, 1, 1))
        cx = torch.randint(0, w + (1 - cw % 2), (6, 1, 1))
        rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
        top, left = cy - ch // 2, cx - cw // 2
        inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
        assert torch.equal(out == 0, inside[:, None].expand_as(out))
        assert torch.equal(out[out != 0], x[out != 0])


def _train_pass(net, call, seed):
    """One training pass of ``net`` through ``call(net)`` and its backward; what it changed."""
    torch.manual_seed(seed)
    out = call(net)
    logits = out.logits if hasattr(out, "logits") else out
    loss = (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum()
    if hasattr(out, "reconstructions") and out.reconstructions:
        loss = loss + sum(r.square().mean() for r in out.reconstructions.values())
    net.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():  # move the weights, so that the next pass meets new ones
        for p in net.parameters():
            if p.grad is not None:
                p.sub_(0.01 * p.grad.sign())
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    return logits.detach(), grads, {name: b.clone() for name, b in net.named_buffers()}


def test_layer_pass_is_torchs_spectral_norm_and_batch_norm_bit_for_bit():
    """A training pass normalises all its layers' weights at once (``gan_studio.models.batched``):
    outputs, gradients, the power iteration's u and v and the batch-norm counters are bitwise
    those of torch's per-layer spectral norm and batch norm, pass after pass. D's decoders (and
    their u, v and counters) only move in passes that reconstruct."""
    import copy

    from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

    from gan_studio.models.batched import spectral_norm

    for layer in (torch.nn.Conv2d(3, 5, 3), torch.nn.ConvTranspose2d(4, 6, 4), torch.nn.Linear(7, 2)):
        torch.manual_seed(1)  # same draws for u and v, same state-dict keys
        theirs = torch_spectral_norm(copy.deepcopy(layer)).state_dict()
        torch.manual_seed(1)
        ours = spectral_norm(copy.deepcopy(layer)).state_dict()
        assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)

    torch.manual_seed(0)
    G = Generator(resolution=32, n_classes=3, z_dim=8, width=8, embed_dim=8)
    D = Discriminator(resolution=32, n_classes=3, width=8, aux_classifier=True, group_size=2)
    z, y = torch.randn(4, 8), torch.tensor([0, 0, 2, 2])
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    cases = (  # network, its forward (layer_pass), the same pass layer by layer, has decoders moved
        (G, lambda m: m(z, y), lambda m: m._forward(z, y, "random"), False),
        (D, lambda m: m(images, y), lambda m: m._forward(images, y, False, None), False),
        (D, lambda m: m(images, y, reconstruct=True, part=1), lambda m: m._forward(images, y, True, 1), True),
    )
    for net, batched_call, per_layer_call, reconstructs in cases:
        batched_net, reference = copy.deepcopy(net), copy.deepcopy(net)
        for seed in range(3):
            a = _train_pass(batched_net, batched_call, seed)
            b = _train_pass(reference, per_layer_call, seed)
            assert torch.equal(a[0], b[0])
            for got, want in zip(a[1:], b[1:], strict=True):
                assert got.keys() == want.keys()
                assert [k for k in want if not torch.equal(got[k], want[k])] == []
        before = net.state_dict()
        moved = {k for k, v in batched_net.state_dict().items() if not torch.equal(v, before[k])}
        assert any(k.endswith("._u") for k in moved) and any(k.endswith("num_batches_tracked") for k in moved)
        assert (
            any(k.startswith("decoder_") and k.endswith(("._u", "_tracked")) for k in moved) == reconstructs
        )
