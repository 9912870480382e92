"""Config loading: defaults, Snakemake string coercion, schema validation messages, instantiate."""

from __future__ import annotations

import inspect

import pytest
import yaml

from mml_core.config import DEFAULT_CONFIG_PATH, ConfigError, config_hash, from_snakemake, instantiate, load_config
from mml_core.config.loading import load_schema


def default_dict() -> dict:
    with open(DEFAULT_CONFIG_PATH) as fh:
        return yaml.safe_load(fh)


def test_default_config_validates_and_has_mml_keys():
    cfg = load_config()
    for key in ("proj", "data_dir", "seed", "task_list", "pivot", "tagging", "mode", "trainer", "tune", "cbs",
                "logging", "sampling", "arch", "optimizer"):
        assert key in cfg
    assert cfg.mode.scheduler == "train"
    assert cfg.pivot.name == "sk_digits"


def test_snakemake_string_scalars_are_coerced_to_schema_types():
    config = default_dict()
    # what `--config 'trainer={max_epochs: 3}' 'mode={cv: false}' 'tune={lr: true}'` delivers
    config["trainer"]["max_epochs"] = "3"
    config["mode"]["cv"] = "false"
    config["tune"]["lr"] = "true"
    config["optimizer"]["lr"] = "1e-4"
    config["seed"] = "7"
    config["pivot"]["name"] = "null"
    cfg = from_snakemake(config)
    assert cfg.pivot.name is None
    assert cfg.trainer.max_epochs == 3 and cfg.mode.cv is False and cfg.tune.lr is True
    assert cfg.optimizer.lr == pytest.approx(1e-4) and cfg.seed == 7
    # strings stay strings where the schema wants a string
    config["proj"] = "123"
    assert from_snakemake(config).proj == "123"


def test_unknown_key_names_key_and_allowed_keys():
    config = default_dict()
    config["trainer"]["max_epoch"] = 3
    with pytest.raises(ConfigError) as err:
        from_snakemake(config)
    message = str(err.value)
    assert "trainer.max_epoch" in message and "max_epochs" in message and "--config" in message


def test_unknown_top_level_key():
    config = default_dict()
    config["epochs"] = 3
    with pytest.raises(ConfigError, match="Unknown config key 'epochs'.*Allowed keys under '<top level>'"):
        from_snakemake(config)


def test_wrong_type_names_key_type_and_value():
    config = default_dict()
    config["trainer"]["max_epochs"] = "many"
    with pytest.raises(ConfigError, match=r"'trainer.max_epochs' must be integer, got 'many'"):
        from_snakemake(config)


def test_missing_keys_take_the_defaults():
    # Snakemake replaces a whole section when it cannot parse a --config value (a '?' in a tag)
    config = default_dict()
    config["pivot"] = "{name: sk_digits, tags: +shrink_train?200}"
    config["mode"] = {"cv": "false"}
    cfg = from_snakemake(config)
    assert cfg.pivot.tags == "+shrink_train?200" and cfg.mode.cv is False
    assert cfg.mode.scheduler == "train" and list(cfg.mode.subroutines) == ["train", "predict", "test"]
    config["task_list"] = "[sk_digits+nested?1, sk_digits_parity]"
    assert list(from_snakemake(config).task_list) == ["sk_digits+nested?1", "sk_digits_parity"]


def test_null_where_a_value_is_required_is_reported():
    config = default_dict()
    config["pivot"]["tags"] = None
    with pytest.raises(ConfigError, match="'pivot.tags' must be string, got None"):
        from_snakemake(config)


def test_enum_violation_lists_choices():
    config = default_dict()
    config["augmentations"]["normalization"] = "imagenet21k"
    with pytest.raises(ConfigError, match=r"'augmentations.normalization' must be one of \[.*imagenet.*task.*\], got 'imagenet21k'"):
        from_snakemake(config)


def test_trainer_schema_keys_are_lightning_trainer_arguments():
    import pytorch_lightning as pl

    allowed = set(inspect.signature(pl.Trainer.__init__).parameters)
    keys = set(load_schema()["properties"]["trainer"]["properties"])
    assert keys <= allowed, keys - allowed


def test_load_config_overrides_mapping_dotlist_and_files(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("proj: other\ntrainer: {max_epochs: 2}\n")
    cfg = load_config({"trainer": {"max_epochs": 5}}, configfiles=[other])
    assert cfg.proj == "other" and cfg.trainer.max_epochs == 5
    assert cfg.trainer.accelerator == "cpu"  # untouched keys keep the default
    assert load_config(["trainer.max_epochs=4", "mode.cv=false"]).trainer.max_epochs == 4


def test_config_hash_is_order_independent():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_instantiate_builds_nested_targets_and_partials():
    obj = instantiate({"_target_": "collections.OrderedDict", "x": {"_target_": "fractions.Fraction", "numerator": 1,
                                                                     "denominator": 2}})
    assert str(obj["x"]) == "1/2"
    part = instantiate({"_target_": "fractions.Fraction", "_partial_": True, "numerator": 3})
    assert part(denominator=4) == 0.75
    with pytest.raises(ValueError, match="Cannot import 'nonexistent_pkg'"):
        instantiate({"_target_": "nonexistent_pkg.Thing"})


def test_instantiate_maps_mml_lightning_names():
    early = instantiate({"_target_": "lightning.pytorch.callbacks.EarlyStopping", "monitor": "val/loss"})
    assert type(early).__name__ == "EarlyStopping"


@pytest.mark.parametrize("experiment", sorted(p.name for p in (DEFAULT_CONFIG_PATH.parent).glob("*.yaml")))
def test_every_example_experiment_validates(experiment):
    cfg = load_config(configfiles=[DEFAULT_CONFIG_PATH.parent / experiment])
    assert cfg.proj
