import pytest

from saddlepoint.config import Config, build_config, dump_yaml, nest, parse_sets, read_yaml, to_dict
from saddlepoint.errors import ConfigError


def sets(*pairs):
    return nest(parse_sets(list(pairs)))


def test_defaults_are_the_default_job():
    cfg = Config()
    assert (cfg.data.name, cfg.model.name, cfg.loss.name, cfg.optim.name) == ("mnist-t10k", "dcgan28", "ns", "adam")


def test_set_coerces_types():
    cfg = build_config(sets("optim.lr=1e-4", "train.steps=300", "train.ema=0", "model.spectral_norm=true",
                            "loss.penalty=gp", "seed=7"))
    assert cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.train.steps == 300 and isinstance(cfg.train.steps, int)
    assert cfg.train.ema == 0.0
    assert cfg.model.spectral_norm is True
    assert cfg.loss.penalty == ["gp"]
    assert cfg.seed == 7


def test_per_player_lists():
    cfg = build_config(sets("optim.lr=[1e-4, 4e-4]"))
    assert cfg.optim.lr == [1e-4, 4e-4]
    cfg = build_config(sets("loss.penalty=gp,r1"))
    assert cfg.loss.penalty == ["gp", "r1"]


def test_optim_extras_are_typed_and_passed():
    cfg = build_config(sets("optim.beta1=-0.5", "optim.tol=1e-6", "optim.base=adam"))
    assert cfg.optim.hyper_parameters() == {"beta1": -0.5, "tol": 1e-6, "base": "adam", "lr": 1e-3}


@pytest.mark.parametrize(
    "pair, words",
    [
        ("train.stpes=3", ["train.stpes", "train.steps"]),
        ("bogus.key=1", ["bogus"]),
        ("train.steps=abc", ["train.steps", "integer"]),
        ("train.steps=1.5", ["train.steps"]),
        ("optim.lr=fast", ["optim.lr"]),
        ("model.spectral_norm=maybe", ["model.spectral_norm"]),
        ("optim.scheme=sideways", ["optim.scheme", "alternating", "simultaneous"]),
        ("optim.hvp=magic", ["optim.hvp", "exact", "fd"]),
    ],
)
def test_bad_keys_and_values_name_the_key(pair, words):
    with pytest.raises(ConfigError) as err:
        build_config(sets(pair))
    for word in words:
        assert word in str(err.value)


def test_malformed_set():
    with pytest.raises(ConfigError):
        parse_sets(["noequals"])


def test_yaml_round_trip(tmp_path):
    cfg = build_config(sets("optim.lr=[1e-4,2e-4]", "optim.beta1=0.0", "loss.penalty=[gp]", "loss.gp_weight=5"))
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    again = build_config(read_yaml(path))
    assert to_dict(again) == to_dict(cfg)


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {steps: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        read_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_yaml(listy)


def test_shipped_presets_parse():
    from pathlib import Path

    presets = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
    assert len(presets) >= 5
    for path in presets:
        build_config(read_yaml(path))


# ----------------------------------------------------------------------------- dataset presets
def test_a_dataset_with_a_preset_starts_from_it():
    from pathlib import Path

    preset = read_yaml(Path(__file__).parents[1] / "configs" / "ring.yaml")
    cfg = build_config({"data": {"name": "ring"}}, dataset_defaults=True)
    assert to_dict(cfg) == to_dict(build_config(preset))
    assert (cfg.model.name, cfg.model.width, cfg.train.batch_size) == (
        preset["model"]["name"], preset["model"]["width"], preset["train"]["batch_size"])
    # without the flag (the library's plain builder) nothing is added
    assert build_config({"data": {"name": "ring"}}).model.name == "dcgan28"


def test_user_keys_win_over_the_preset_and_another_name_drops_its_section():
    from pathlib import Path

    ring = read_yaml(Path(__file__).parents[1] / "configs" / "ring.yaml")
    cfg = build_config({"data": {"name": "ring"}}, sets("optim.lr=0.01", "train.steps=7"), dataset_defaults=True)
    assert cfg.optim.lr == 0.01 and cfg.train.steps == 7
    assert cfg.optim.name == ring["optim"]["name"] and cfg.optim.extra["beta1"] == ring["optim"]["beta1"]  # kept
    cfg = build_config({"data": {"name": "ring"}}, sets("optim.name=sgd"), dataset_defaults=True)
    assert cfg.optim.name == "sgd" and "beta1" not in cfg.optim.extra  # the preset's betas: invalid for sgd
    assert cfg.model.name == "mlp"  # other sections still come from the preset
    cfg = build_config(sets("data.name=grid", "model.name=mlp", "model.width=16"), dataset_defaults=True)
    grid = read_yaml(Path(__file__).parents[1] / "configs" / "grid.yaml")
    assert cfg.model.width == 16 and cfg.model.depth == grid["model"]["depth"]


def test_datasets_without_a_preset_keep_the_default_job():
    assert to_dict(build_config({}, dataset_defaults=True)) == to_dict(Config())
    assert to_dict(build_config(sets("data.name=digits"), dataset_defaults=True)) == to_dict(
        build_config(sets("data.name=digits")))
