"""Config loading: defaults, YAML, dotted overrides, and the errors bad input gets."""

import pytest

from reasonlab.config import DEFAULT_CONFIG, RunConfig, dump_config, load_config
from reasonlab.errors import ConfigError


def test_default_config_loads_and_round_trips(tmp_path):
    cfg = load_config()
    assert cfg.task.name == "arith"
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_overrides_are_typed():
    cfg = load_config(
        None,
        [
            "pretrain.token_budget=1234",
            "eval.levels=[2, 3]",
            "task.knobs.digits=3",
            "traces.answer_only=0.25",
        ],
    )
    assert cfg.pretrain.token_budget == 1234
    assert cfg.eval.levels == [2, 3]
    assert cfg.task.knobs["digits"] == 3
    assert cfg.traces.answer_only == 0.25


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("pretrain.token_budgt=5", "pretrain.token_budgt"),
        ("nosuch=1", "nosuch"),
        ("pretrain.lr=-1", "pretrain.lr"),
        ("seed", "key=value"),
        ("model.d_model.x=3", "model.d_model.x"),
        ("rl.std_eps=0", "rl.std_eps"),
        ("rl.kl_importance_correction=maybe", "rl.kl_importance_correction"),
    ],
)
def test_bad_overrides_name_the_field(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\npretrain: {token_budget: 5\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "line" in str(err.value)


def test_unknown_yaml_field_and_missing_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pretrain:\n  budget: 5\n")
    with pytest.raises(ConfigError, match="pretrain.budget: unknown field"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_every_field_is_documented():
    def walk(model):
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, RunConfig.__mro__[1]):
                walk(ann)
            else:
                assert field.description, f"{model.__name__}.{name} has no docstring"

    walk(RunConfig)
    assert DEFAULT_CONFIG.is_file()


def test_the_hugging_face_example_config_validates():
    from reasonlab.config import DEFAULT_CONFIG

    cfg = load_config(DEFAULT_CONFIG.parent / "hf_grpo_math.yaml")
    assert cfg.task.name == "math" and cfg.hf.lora_r == 16 and cfg.hf.sampler == "builtin"
    with pytest.raises(ConfigError, match="hf.sampler"):
        load_config(DEFAULT_CONFIG.parent / "hf_grpo_math.yaml", ["hf.sampler=tgi"])
