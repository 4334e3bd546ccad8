"""Config loading: defaults, YAML, dotted overrides, and the errors bad input gets; the corpus's level
distribution (pretrain.levels) and configs/range.yaml."""

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


@pytest.mark.parametrize(
    "levels, fragment",
    [
        ("{2: 0.5, 3: 0.6}", "pretrain.levels: shares must sum to 1"),
        ("{2: 0.5}", "pretrain.levels: shares must sum to 1 (within 1e-6), got 0.5"),
        ("{2: -0.5, 3: 1.5}", "pretrain.levels.2: Input should be greater than or equal to 0"),
        ("{2: .nan, 3: 1.0}", "pretrain.levels.2: Input should be a finite number"),
        ("{two: 1.0}", "pretrain.levels.two"),
        ("{2: 1.0, 3: x}", "pretrain.levels.3"),
        ("[2, 3]", "pretrain.levels"),
    ],
)
def test_bad_level_distributions_name_the_field(levels, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"pretrain.levels={levels}"])
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["pretrain.levels={1: 0.5, 2: 0.5}"], "n_operands=1"),  # arith: 2..32 operands
        (["pretrain.levels={2: 0.5, 40: 0.5}"], "n_operands=40"),
        (
            [
                "task.name=countdown",
                "task.knobs={}",
                "traces.answer_only=0",
                "pretrain.levels={4: 0.5, 9: 0.5}",
            ],
            "n_numbers=9",
        ),  # countdown: 2..8 numbers
        (["task.name=math500", "task.knobs={}", "pretrain.levels={1: 1.0}"], "no difficulty knob"),
    ],
)
def test_levels_the_task_cannot_make_are_config_errors(overrides, fragment):
    from reasonlab.experiments.main_job import validate

    cfg = load_config(None, overrides)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value).startswith("pretrain.levels: ") and fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_the_range_config_and_its_level_regions():
    from reasonlab.experiments.main_job import region_keys, validate

    cfg = load_config(DEFAULT_CONFIG.parent / "range.yaml")
    validate(cfg)
    assert cfg.pretrain.levels == dict.fromkeys(range(2, 7), 0.2)
    assert region_keys(cfg) == {
        **{f"eval/d{lv}/region": "in_range" for lv in range(3, 7)},
        "eval/d7/region": "edge",
        "eval/d9/region": "beyond",
        "eval/d11/region": "beyond",
    }
    assert region_keys(load_config()) == {}  # no range: no labels, summary.json as before
    default = (
        load_config()
    )  # range.yaml is default.yaml plus the range, its eval levels, longer sequences
    assert cfg == default.model_copy(
        update={
            "name": "range",
            "model": default.model.model_copy(update={"max_seq_len": 160}),
            "pretrain": default.pretrain.model_copy(update={"levels": cfg.pretrain.levels}),
            "eval": default.eval.model_copy(
                update={"max_new_tokens": 128, "levels": [3, 4, 5, 6, 7, 9, 11]}
            ),
            "rl": default.rl.model_copy(update={"max_new_tokens": 128}),
        }
    )
