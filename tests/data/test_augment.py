"""DiffAugment (saddlepoint.data.augment; Zhao et al. 2020): each op against a hand computation with known
parameters and against the paper's index-based code, differentiability, seeded and shard-exact draws, policies
and the ``train.augment`` config key; in training, seed reproducibility and exact resume."""

from __future__ import annotations

import pytest
import torch

from saddlepoint.config import build_config
from saddlepoint.data.augment import AUGMENTATIONS, DiffAugment, Draw, parse_policy
from saddlepoint.errors import ConfigError

from ..training.helpers import SMALL_IMAGES, assert_trees_equal
from .helpers import assert_close, gen

VALID = "valid: brightness, color, contrast, cutout, saturation, translation"


class Given:
    """A stand-in for :class:`Draw` that hands out given parameters and records the ranges asked for."""

    def __init__(self, *values) -> None:
        self.values, self.asked = list(values), []

    def uniform(self, x, low, high):
        self.asked.append(("uniform", low, high))
        return torch.tensor(self.values.pop(0), dtype=x.dtype).view(-1, 1, 1, 1)

    def integers(self, x, low, high):
        self.asked.append(("integers", low, high))
        return torch.tensor(self.values.pop(0))


class Recorded(Draw):
    """A seeded :class:`Draw` that keeps what it handed out."""

    def __init__(self, seed: int) -> None:
        super().__init__(gen(seed))
        self.given: list[torch.Tensor] = []

    def uniform(self, x, low, high):
        self.given.append(super().uniform(x, low, high).flatten())
        return self.given[-1].view(-1, 1, 1, 1)

    def integers(self, x, low, high):
        self.given.append(super().integers(x, low, high))
        return self.given[-1]


def images(*shape, seed=0):
    return torch.rand(*shape, generator=gen(seed)) * 2 - 1


# ----------------------------------------------------------------------------------------- the paper's code
def paper_translation(x, th, tw):
    """``rand_translation`` of DiffAugment_pytorch.py with its two draws given."""
    n, _, h, w = x.shape
    gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
    gx = torch.clamp(gx + th.view(n, 1, 1) + 1, 0, h + 1)
    gy = torch.clamp(gy + tw.view(n, 1, 1) + 1, 0, w + 1)
    x_pad = torch.nn.functional.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def paper_cutout(x, oh, ow, ratio=0.5):
    """``rand_cutout`` of DiffAugment_pytorch.py with its two draws given."""
    n, _, h, w = x.shape
    size = int(h * ratio + 0.5), int(w * ratio + 0.5)
    gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    gx = torch.clamp(gx + oh.view(n, 1, 1) - size[0] // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + ow.view(n, 1, 1) - size[1] // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


# ----------------------------------------------------------------------------------------- each op
def test_brightness_adds_the_drawn_offset():
    x = images(2, 3, 2, 2)
    draw = Given([0.25, -0.4])
    out = AUGMENTATIONS.get("brightness")(x, draw)
    assert draw.asked == [("uniform", -0.5, 0.5)]
    assert torch.equal(out[0], x[0] + 0.25) and torch.equal(out[1], x[1] + torch.tensor(-0.4))


def test_saturation_scales_around_the_mean_over_channels():
    x = images(2, 3, 2, 2)
    draw = Given([0.0, 1.5])
    out = AUGMENTATIONS.get("saturation")(x, draw)
    assert draw.asked == [("uniform", 0.0, 2.0)]
    for n, s in ((0, 0.0), (1, 1.5)):
        for i in range(2):
            for j in range(2):
                m = sum(float(x[n, c, i, j]) for c in range(3)) / 3
                for c in range(3):
                    assert abs(float(out[n, c, i, j]) - ((float(x[n, c, i, j]) - m) * s + m)) < 1e-6
    assert torch.equal(AUGMENTATIONS.get("saturation")(x[:, :1], Given([1.7, 0.3])), x[:, :1])  # grey: identity


def test_contrast_scales_around_the_image_mean():
    x = images(2, 3, 2, 2)
    draw = Given([0.5, 1.25])
    out = AUGMENTATIONS.get("contrast")(x, draw)
    assert draw.asked == [("uniform", 0.5, 1.5)]
    for n, c in ((0, 0.5), (1, 1.25)):
        m = float(x[n].double().mean())
        assert_close(out[n], (x[n].double() - m) * c + m)


def test_color_is_brightness_then_saturation_then_contrast():
    x = images(3, 3, 4, 4)
    draw = Given([0.1, 0.2, -0.3], [1.5, 0.5, 0.0], [0.75, 1.0, 1.4])
    out = AUGMENTATIONS.get("color")(x, draw)
    assert draw.asked == [("uniform", -0.5, 0.5), ("uniform", 0.0, 2.0), ("uniform", 0.5, 1.5)]
    steps = [AUGMENTATIONS.get(name) for name in ("brightness", "saturation", "contrast")]
    want = x
    for step, value in zip(steps, ([0.1, 0.2, -0.3], [1.5, 0.5, 0.0], [0.75, 1.0, 1.4])):
        want = step(want, Given(value))
    assert torch.equal(out, want)


def test_translation_shifts_by_the_drawn_pixels_with_zero_fill():
    x = images(2, 1, 8, 16)  # r = int(8/8 + 0.5) = 1 rows, int(16/8 + 0.5) = 2 columns
    th, tw = [1, -1], [-2, 0]
    draw = Given(th, tw)
    out = AUGMENTATIONS.get("translation")(x, draw)
    assert draw.asked == [("integers", -1, 2), ("integers", -2, 3)]
    for n in range(2):
        for i in range(8):
            for j in range(16):
                si, sj = i + th[n], j + tw[n]
                want = x[n, 0, si, sj] if 0 <= si < 8 and 0 <= sj < 16 else 0.0
                assert float(out[n, 0, i, j]) == float(want)
    assert torch.equal(out[0, 0, 7], torch.zeros(16)) and torch.equal(out[0, 0, :, :2], torch.zeros(8, 2))
    assert torch.equal(out, paper_translation(x, torch.tensor(th), torch.tensor(tw)))


def test_cutout_zeroes_exactly_the_drawn_square():
    x = images(2, 2, 8, 6) + 3  # no zero pixels; k_h = 4 (even: o_h in 0..8), k_w = int(3.5) = 3 (odd: o_w in 0..5)
    oh, ow = [0, 5], [2, 5]
    draw = Given(oh, ow)
    out = AUGMENTATIONS.get("cutout")(x, draw)
    assert draw.asked == [("integers", 0, 9), ("integers", 0, 6)]
    zeroed = [{(i, j) for i in (0, 1) for j in (1, 2, 3)},  # rows −2..1 clipped, columns 1..3
              {(i, j) for i in (3, 4, 5, 6) for j in (4, 5)}]  # rows 3..6, columns 4..6 clipped
    for n in range(2):
        for i in range(8):
            for j in range(6):
                want = torch.zeros(2) if (i, j) in zeroed[n] else x[n, :, i, j]
                assert torch.equal(out[n, :, i, j], want), (n, i, j)
    assert torch.equal(out, paper_cutout(x, torch.tensor(oh), torch.tensor(ow)))


@pytest.mark.parametrize("shape", [(5, 3, 8, 8), (4, 1, 7, 12), (3, 2, 28, 28)])
def test_geometric_ops_match_the_papers_code_on_drawn_parameters(shape):
    x = images(*shape)
    for name, reference in (("translation", paper_translation), ("cutout", paper_cutout)):
        for seed in range(4):
            draw = Recorded(seed)
            assert torch.equal(AUGMENTATIONS.get(name)(x, draw), reference(x, *draw.given)), (name, seed)


@pytest.mark.parametrize("name", AUGMENTATIONS.registered())
def test_every_op_is_differentiable_with_respect_to_the_images(name):
    x = images(3, 3, 8, 8).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: AUGMENTATIONS.get(name)(t, Draw(gen(7))), (x,))


def test_drawn_parameters_lie_in_the_papers_ranges():
    x = torch.zeros(4000, 1, 1, 1)
    for low, high in ((-0.5, 0.5), (0.0, 2.0), (0.5, 1.5)):
        u = Draw(gen(1)).uniform(x, low, high)
        assert low <= float(u.min()) < low + 0.01 and high - 0.01 < float(u.max()) < high
    t = Draw(gen(1)).integers(x, -2, 3)
    assert set(t.tolist()) == {-2, -1, 0, 1, 2}


# ----------------------------------------------------------------------------------------- policies and draws
def test_policies():
    assert parse_policy("color,translation,cutout") == ["color", "translation", "cutout"]
    assert parse_policy(["cutout", " color "]) == ["cutout", "color"]
    for off in (None, "", "none", [], ["none"], "null"):
        assert parse_policy(off) == []
    x = images(2, 3, 8, 8)
    assert DiffAugment(None)(x) is x and not DiffAugment("none") and DiffAugment()
    with pytest.raises(ConfigError, match=f"^train.augment: unknown augmentation 'colour'; {VALID}$"):
        parse_policy("colour,cutout")
    with pytest.raises(ConfigError, match="^train.augment: expected"):
        parse_policy([1, 2])


def test_draws_are_seeded_and_leave_the_global_stream_alone():
    x = images(4, 3, 16, 16)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a, b, c = DiffAugment(seed=5)(x), DiffAugment(seed=5)(x), DiffAugment(seed=6)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(DiffAugment()(x, gen(3)), DiffAugment()(x, Draw(gen(3))))


def test_a_batch_transforms_identically_at_every_call_with_independent_real_and_fake_draws():
    aug = DiffAugment(seed=1)
    x = images(4, 3, 16, 16)
    state = aug.state_dict()
    batch = aug.for_batch()
    assert torch.equal(batch.real(x), batch.real(x)) and torch.equal(batch.fake(x), batch.fake(x))
    assert not torch.equal(batch.real(x), batch.fake(x))
    assert not torch.equal(aug.for_batch().real(x), batch.real(x))  # the next batch draws anew
    aug.load_state_dict(state)
    assert aug.for_batch().seeds == batch.seeds  # the generator's state is the whole state


def test_a_shard_is_transformed_as_its_rows_of_the_global_batch():
    x = images(6, 3, 16, 16)
    whole = DiffAugment(seed=2).for_batch(6)
    shard = DiffAugment(seed=2).for_batch(6, lambda t: (t[2:4],))
    assert torch.equal(shard.real(x[2:4]), whole.real(x)[2:4]) and torch.equal(shard.fake(x[2:4]), whole.fake(x)[2:4])
    with pytest.raises(ValueError, match="2 rows drawn for a batch of 3"):
        shard.real(x[:3])


# ----------------------------------------------------------------------------------------- config and training
def test_train_augment_config_key():
    assert build_config().train.augment == []
    assert build_config({"train": {"augment": "color,translation,cutout"}}).train.augment == [
        "color", "translation", "cutout"]
    assert build_config({"train": {"augment": ["cutout"]}}).train.augment == ["cutout"]
    assert build_config({"train": {"augment": "none"}}).train.augment == []
    with pytest.raises(ConfigError, match=f"^train.augment: unknown augmentation 'flip'; {VALID}$"):
        build_config({"train": {"augment": "color,flip"}})


def test_cli_rejects_unknown_names_and_point_datasets_in_one_line(tmp_path, capsys):
    from saddlepoint.cli import main

    for sets, what in ((["train.augment=colour"], "unknown augmentation 'colour'"),
                       (["data.name=ring", "train.augment=color"], "dataset 'ring' holds points")):
        args = [a for s in sets for a in ("--set", s)]
        assert main(["train", *args, "--set", "train.steps=1", "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: train.augment: ") and what in err and err.count("\n") == 1, err


def small_run(steps, **train):
    """The training tests' small MNIST run with the paper's policy (no report)."""
    train = {**SMALL_IMAGES["train"], "steps": steps, "augment": "color,translation,cutout", **train}
    return {**SMALL_IMAGES, "train": train, "eval": {"samples": 16},
            "log": {**SMALL_IMAGES["log"], "report": False}}


def test_training_with_augmentation_is_seeded_and_resumes_exactly(tmp_path):
    from saddlepoint.training import resume, train
    from saddlepoint.training.checkpoint import load_checkpoint

    def state(run):
        ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
        return {k: ckpt[k] for k in ("G", "D", "optimizer", "augment", "data_gen", "noise_gen", "rng")}

    straight = state(train(small_run(4), tmp_path / "a"))
    assert_trees_equal(state(train(small_run(4), tmp_path / "b")), straight)
    other = state(train(small_run(4, augment="none"), tmp_path / "c"))
    assert other["augment"] is None
    assert any(not torch.equal(a, b) for a, b in zip(other["G"].values(), straight["G"].values()))
    half = train(small_run(2), tmp_path / "d")
    assert_trees_equal(state(resume(half, {"train": {"steps": 4}})), straight)
