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
    assert list(cfg.loss.penalty) == ["gp"]
    assert cfg.seed == 7


def test_per_player_lists():
    cfg = build_config(sets("optim.lr=[1e-4, 4e-4]"))
    assert cfg.optim.lr == [1e-4, 4e-4]
    cfg = build_config(sets("loss.penalty=gp,r1"))
    assert list(cfg.loss.penalty) == ["gp", "r1"]


def test_optim_extras_are_typed_and_passed():
    cfg = build_config(sets("optim.name=extragradient", "optim.beta1=-0.5", "optim.base=adam"))
    assert cfg.optim.hyper_parameters() == {"beta1": -0.5, "base": "adam", "lr": 1e-3}
    cfg = build_config(sets("optim.name=cgd", "optim.tol=1e-6", "optim.max_iter=7"))
    assert cfg.optim.hyper_parameters() == {"tol": 1e-6, "max_iter": 7, "lr": 1e-3}
    assert cfg.optim.tol == 1e-6  # options read as attributes too


def test_optim_options_are_checked_against_the_chosen_optimizer():
    with pytest.raises(ConfigError, match=r"optim.tol: not a hyper-parameter of optimizer 'adam'; valid: .*beta1"):
        build_config(sets("optim.tol=1e-6"))


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


def test_datasets_without_a_preset_keep_the_package_defaults():
    assert to_dict(build_config(sets("data.name=digits"), dataset_defaults=True)) == to_dict(
        build_config(sets("data.name=digits")))


def test_the_default_job_is_the_defaults_with_an_fid_curve():
    """No arguments: the package defaults on the bundled digits, plus FID every 500 steps (issue 16's search)."""
    cfg = build_config({}, dataset_defaults=True)
    assert (cfg.eval.every, cfg.eval.metrics) == (500, ["fid"])
    cfg.eval.every, cfg.eval.metrics = Config().eval.every, Config().eval.metrics
    assert to_dict(cfg) == to_dict(Config())
    assert build_config(sets("data.name=mnist-t10k"), dataset_defaults=True).eval.metrics == ["fid"]


# ----------------------------------------------------------------------------- the layering rule (issue 19)
REPO = __import__("pathlib").Path(__file__).parents[1]
RING = REPO / "configs" / "ring.yaml"


def optimizer_names():
    from saddlepoint.optim import OPTIMIZERS

    return OPTIMIZERS.names()


def builds(cfg):
    """The optimizer of ``cfg`` builds on two dummy players (its hyper-parameters are all valid for it)."""
    import torch

    from saddlepoint.optim import build

    players = [[torch.zeros(1, requires_grad=True)], [torch.zeros(1, requires_grad=True)]]
    return build(cfg.optim.name, players, **cfg.optim.hyper_parameters())


@pytest.mark.parametrize("name", optimizer_names())
def test_a_preset_file_is_a_starting_point_for_every_optimizer(name):
    cfg = build_config(read_yaml(RING), sets(f"optim.name={name}"), dataset_defaults=True)
    builds(cfg)
    assert cfg.optim.name == name and cfg.model.name == "mlp" and cfg.train.steps == 2000
    ring = read_yaml(RING)["optim"]
    for key, value in cfg.dropped.items():  # only the preset's optimizer keys, with their values
        assert key.startswith("optim.") and ring[key.split(".", 1)[1]] == value
    assert to_dict(cfg)["dropped"] == cfg.dropped and (not cfg.dropped or "dropped:" in dump_yaml(cfg))


def test_every_arrival_path_drops_the_same_keys():
    ring = read_yaml(RING)
    expected = {"optim.base": "adam"}
    auto = build_config(sets("data.name=ring", "optim.name=adam"), dataset_defaults=True)  # --set data.name=ring
    config_file = build_config(ring, sets("optim.name=adam"), dataset_defaults=True)  # --config configs/ring.yaml
    api = build_config({"data": {"name": "ring"}, "optim": {"name": "adam"}}, dataset_defaults=True)  # sp.train(dict)
    for cfg in (auto, config_file, api):
        assert cfg.dropped == expected
        assert (cfg.optim.name, cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2) == ("adam", 0.002, 0.5, 0.999)
        builds(cfg)
    assert to_dict(auto) == to_dict(config_file) == to_dict(api)
    # the dropped record survives a round trip through config.yaml (as resume reads it)
    assert build_config(__import__("yaml").safe_load(dump_yaml(auto))).dropped == expected


def test_a_sweeps_base_config_follows_the_same_rule():
    from saddlepoint.experiments.sweep import plan_runs

    grid = {"optim.name": ["adam", "extragradient"], "loss.name": ["ns", "hinge"]}  # the README's sweep
    _, specs = plan_runs([read_yaml(RING)], grid, 1, 1)
    dropped = {(s.values["optim.name"], s.values["loss.name"]): s.config["dropped"] for s in specs}
    assert dropped == {("adam", "ns"): {"optim.base": "adam"}, ("adam", "hinge"): {"optim.base": "adam"},
                       ("extragradient", "ns"): {}, ("extragradient", "hinge"): {}}


def test_keys_in_the_layer_naming_the_new_choice_still_fail_loudly(tmp_path):
    ring = read_yaml(RING)
    with pytest.raises(ConfigError, match=r"optim.base: not a hyper-parameter of optimizer 'adam'"):
        build_config(ring, sets("optim.name=adam", "optim.base=adam"), dataset_defaults=True)
    with pytest.raises(ConfigError, match="optim.momentum"):  # a later layer than the new name: checked too
        build_config(ring, sets("optim.name=adam"), sets("optim.momentum=0.9"), dataset_defaults=True)
    own = tmp_path / "own.yaml"
    own.write_text("data: {name: ring}\noptim: {name: sgd, beta1: 0.5}\n")
    with pytest.raises(ConfigError, match="optim.beta1"):  # a file that names sgd and gives it a beta1
        build_config(read_yaml(own), dataset_defaults=True)
    # the same name again is not another choice: the earlier layer's keys stay and are checked
    with pytest.raises(ConfigError, match="optim.bogus"):
        build_config({"optim": {"name": "adam", "bogus": 1}}, sets("optim.name=adam"))


def test_another_model_drops_the_presets_model_options():
    cfg = build_config(sets("data.name=ring", "model.name=dcgan28"), dataset_defaults=True)
    assert cfg.dropped == {"model.depth": 3, "model.width": 128, "model.activation": "relu"}
    assert cfg.model.options() == {"scale": 0.5}  # the default job's option, which dcgan28 takes
    assert build_config(sets("model.name=mlp")).model.options() == {}  # ... and mlp does not (not a drop)
    with pytest.raises(ConfigError, match="unknown config key 'model.width' for model 'dcgan28'"):
        build_config(sets("model.width=8"))


def test_the_command_line_records_what_was_dropped(tmp_path):
    from saddlepoint.cli import main

    out = tmp_path / "run"
    code = main(["train", "--config", str(RING), "--set", "optim.name=adam", "--set", "train.steps=2",
                 "--set", "train.batch_size=8", "--set", "eval.samples=16", "--set", "log.progress=none",
                 "--set", "log.report=false", "--set", "train.ema=0", "--out", str(out)])
    assert code == 0
    written = read_yaml(out / "config.yaml")
    assert written["optim"]["name"] == "adam" and written["dropped"] == {"optim.base": "adam"}


# ----------------------------------------------------------------------------- keys that do not change a run
def test_run_changes_and_the_resumable_keys():
    from saddlepoint.config import RESUMABLE_KEYS, RUN_INVARIANT_KEYS, is_run_invariant, run_changes

    old = build_config(sets("train.steps=10"))
    same = build_config(sets("train.steps=10", "train.threads=3", "log.every=7", "checkpoint.keep=1",
                             "train.sample_every=5"), {"dropped": {"optim.base": "adam"}})
    assert run_changes(old, same) == []
    longer = build_config(sets("train.steps=20", "eval.every=5"))
    assert run_changes(old, longer) == ["eval.every", "train.steps"]
    assert run_changes(old, longer, RESUMABLE_KEYS) == []
    other = build_config(sets("train.steps=10", "seed=1", "optim.lr=0.5"))
    assert run_changes(old, other, RESUMABLE_KEYS) == ["optim.lr", "seed"]
    assert is_run_invariant("log.every") and is_run_invariant("dropped") and not is_run_invariant("train.steps")
    assert set(RUN_INVARIANT_KEYS) < set(RESUMABLE_KEYS)


def test_older_config_files_still_read():
    old = {"model": {"name": "dcgan28", "z_dim": 64, "scale": 0.5, "width": None, "depth": None,
                     "spectral_norm": None},
           "loss": {"name": "wgan", "penalty": ["gp"], "gp_weight": 5.0, "dragan_weight": None, "r1_weight": None},
           "optim": {"name": "adam", "lr": 1e-3, "scheme": None, "hvp": None, "beta1": 0.5}}
    cfg = build_config(old)
    assert cfg.model.options() == {"scale": 0.5} and cfg.loss.gp_weight == 5.0 and cfg.loss.r1_weight is None
    assert list(cfg.loss.penalty) == ["gp"] and cfg.optim.beta1 == 0.5
