"""Typed experiment configs: YAML files plus dotted `--set key=value` overrides, with clear errors.

Every knob of an experiment is a field here, documented where it is declared; the resolved config is
written once to the run folder as `config.yaml`. Unknown keys are errors (a typo never silently
falls back to a default). Usage:

    cfg = load_config("configs/default.yaml", ["pretrain.token_budget=2000000"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from reasonlab.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"


class Strict(BaseModel):
    """The base of every config model: unknown keys are errors, fields are documented by the docstring
    under them, and assignments are validated too."""

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, validate_assignment=True
    )


class TaskConfig(Strict):
    name: str = "arith"
    """Registered task name (see `reasonlab.tasks.list_tasks()`)."""
    knobs: dict[str, Any] = Field(default_factory=dict)
    """Task knobs passed to `get_task(name, **knobs)`, e.g. n_operands, digits, operators."""


class TracesConfig(Strict):
    answer_only: float = Field(0.0, ge=0)
    """Fraction of corpus solutions written as the answer line only (a shortcut)."""
    steps: float = Field(1.0, ge=0)
    """Fraction written step by step."""
    backtrack: float = Field(0.0, ge=0)
    """Fraction written step by step with self-checks and a retracted wrong step now and then."""
    error_rate: float = Field(0.2, ge=0, le=1)
    """In backtrack traces, the chance that a step is first written wrong, checked and redone."""


class ModelConfig(Strict):
    d_model: int = Field(128, gt=0)
    """Width of the residual stream."""
    n_layers: int = Field(4, gt=0)
    """Number of transformer blocks."""
    n_heads: int = Field(4, gt=0)
    """Attention heads per block (d_model must divide evenly)."""
    d_ff: int | None = Field(None, gt=0)
    """Hidden width of the MLP; None means 4 x d_model."""
    max_seq_len: int = Field(128, gt=0)
    """Longest sequence (prompt + completion) the model is built for."""


class PretrainConfig(Strict):
    token_budget: int = Field(3_000_000, gt=0)
    """Total tokens trained on (steps = budget / (batch_size x seq_len))."""
    batch_size: int = Field(32, gt=0)
    """Sequences per optimizer step."""
    seq_len: int = Field(128, gt=0)
    """Tokens per packed training sequence (documents are concatenated, each starting with BOS)."""
    lr: float = Field(3e-3, gt=0)
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    """Final learning rate of the cosine schedule, as a fraction of the peak."""
    warmup_steps: int = Field(50, ge=0)
    """Linear warm-up steps before the cosine decay."""
    weight_decay: float = Field(0.1, ge=0)
    """AdamW weight decay (not applied to norms and embeddings)."""
    grad_clip: float = Field(1.0, gt=0)
    """Global gradient-norm clip."""
    loss_on_prompt: bool = False
    """Also train on prompt tokens; by default only the solution (and EOS) is learned."""
    corpus_docs: int = Field(100_000, gt=0)
    """Distinct training documents generated; the budget cycles through them."""
    levels: dict[int, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )
    """The corpus's difficulty as a distribution: a value of the task's difficulty knob (arith
    n_operands, countdown n_numbers, chess mate_in) -> its share of the documents, e.g. {2: 0.5, 3: 0.5}.
    Shares are >= 0 and sum to 1; the counts by level are exact, by largest remainder (pretrain/corpus.py).
    Empty: every document at the task's own level (task.knobs). With a range, summary.json labels each
    evaluated level in_range, edge (one above the range), beyond or below (eval/d<level>/region)."""
    eval_every: int = Field(100, gt=0)
    """Steps between held-out loss evaluations."""
    checkpoint_every: int = Field(100, gt=0)
    """Steps between checkpoints (written atomically; a rerun resumes from the last)."""
    learners: int = Field(1, gt=0)
    """Data-parallel learners: above 1, each step runs on that many Ray actors (ray.learner_cpus /
    learner_gpus each; gloo on CPUs, NCCL on GPUs), each on batch_size / learners rows, their gradients
    summed: the same step as one learner's. Must divide batch_size."""

    @field_validator("levels")
    @classmethod
    def _shares_sum_to_one(cls, levels: dict[int, float]) -> dict[int, float]:
        total = sum(levels.values())
        if levels and abs(total - 1.0) > 1e-6:
            raise PydanticCustomError(
                "shares_sum", "shares must sum to 1 (within 1e-6), got {total}", {"total": total}
            )
        return levels


class EvalConfig(Strict):
    n_problems: int = Field(200, gt=0)
    """Test problems per difficulty level."""
    n_samples: int = Field(64, gt=0)
    """Samples per problem; pass@k is reported for k = 1..n_samples."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature (0 = greedy)."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling threshold."""
    max_new_tokens: int = Field(64, gt=0)
    """Longest completion; longer ones are cut and judged as they are."""
    levels: list[int] = Field(default_factory=list)
    """Extra difficulty levels to evaluate besides the task's own (for the breakdown)."""
    level_problems: int = Field(100, gt=0)
    """Test problems per extra difficulty level."""
    level_samples: int = Field(16, gt=0)
    """Samples per problem at the extra difficulty levels."""
    batch_size: int = Field(256, gt=0)
    """Sequences generated at once."""
    solutions: int = Field(24, ge=0)
    """Test problems whose base and RL solutions, judged step by step, eval/solutions.json keeps for
    the reader (0 = none)."""


class RLConfig(Strict):
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    steps: int = Field(100, ge=0)
    """RL optimizer steps after pretraining (0 skips RL in `reasonlab run`)."""
    task_knobs: dict[str, Any] = Field(default_factory=dict)
    """Task knobs for RL only, over task.knobs: e.g. {n_operands: 3} post-trains at another difficulty than the
    base was pretrained and is evaluated at (the sweep's edge-of-competence study)."""
    advantage: str = "grpo"
    """Advantage estimator (rl/advantages.py): grpo, dr_grpo, rloo, reinforce_pp, reinforce_pp_baseline, gae (PPO)."""
    std_scaling: Literal["group", "batch", "none"] = "group"
    """GRPO: divide by the reward std of the group, of the whole batch, or not at all (Dr. GRPO)."""
    std_eps: float = Field(1e-6, gt=0)
    """Added to the std before dividing by it (grpo with std_scaling group or batch; the batch
    whitening of reinforce_pp and reinforce_pp_baseline): 1e-6 is reasonlab's default; TRL uses 1e-4."""
    policy_loss: str = "ppo_clip"
    """Policy loss (rl/losses.py): ppo_clip (token-level ratio) or gspo (sequence-level ratio)."""
    aggregation: str = "token_mean"
    """How per-token losses become one number: seq_mean_token_mean (GRPO), token_mean (DAPO),
    seq_sum_norm (Dr. GRPO)."""
    epsilon_low: float = Field(0.2, ge=0)
    """Lower clip range of the importance ratio (ratio >= 1 - epsilon_low)."""
    epsilon_high: float = Field(0.28, ge=0)
    """Upper clip range (ratio <= 1 + epsilon_high); larger than epsilon_low is DAPO's clip-higher."""
    beta: float = Field(0.0, ge=0)
    """KL coefficient towards the reference (base) policy; 0 loads no reference model."""
    kl_estimator: str = "k3"
    """KL estimator: k1, k2 or k3 (Schulman's approximations)."""
    kl_in: Literal["loss", "reward"] = "loss"
    """Put the KL penalty in the loss (GRPO) or subtract it from the per-token reward (PPO, REINFORCE++)."""
    kl_importance_correction: bool = False
    """Multiply the per-token KL penalty of the loss (beta > 0; kl_in: reward is refused) by the
    importance ratio pi/pi_old of the policy loss, so its gradient is the unbiased reverse-KL gradient
    (DeepSeek-V3.2; TRL 1.16's use_bias_correction_kl, default True there). False keeps the plain
    estimator."""
    kl_monitor_every: int = Field(0, ge=0)
    """Every this many steps, log KL(policy || base) on the step's rollouts (loads the base as a frozen
    reference even when beta is 0; 0 = only when beta > 0)."""
    entropy_coef: float = Field(0.0, ge=0)
    """Entropy bonus coefficient (0 = none)."""
    prompts_per_step: int = Field(32, gt=0)
    """Prompts per RL step (the batch holds prompts_per_step x group_size completions)."""
    group_size: int = Field(8, gt=0)
    """Completions sampled per prompt."""
    num_iterations: int = Field(1, gt=0)
    """Passes over each batch (GRPO's mu); above 1 the updates after the first are off-policy and clipped."""
    minibatches: int = Field(1, gt=0)
    """Optimizer steps per pass (the batch is split into this many minibatches of whole groups)."""
    micro_batch_size: int | None = Field(None, gt=0)
    """Sequences per forward/backward pass; gradients are accumulated so the update equals the whole
    minibatch's (None = all at once). Lowers peak memory, not the result."""
    lr: float = Field(1e-4, gt=0)
    """Learning rate (AdamW, constant after warm-up)."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up steps."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""
    grad_clip: float = Field(1.0, gt=0)
    """Global gradient-norm clip."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature of the rollouts (the loss uses the same tempered distribution)."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling threshold of the rollouts."""
    max_new_tokens: int = Field(64, gt=0)
    """Longest completion; also Dr. GRPO's normalising constant."""
    rewards: dict[str, float] = Field(default_factory=lambda: {"outcome": 1.0})
    """Reward functions (rl/rewards.py) and their weights, e.g. {outcome: 1.0, process: 0.5}."""
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal and draw more prompts to refill the batch."""
    max_refill_rounds: int = Field(3, ge=0)
    """Dynamic sampling: at most this many extra draws per step (then train on what was kept)."""
    overlong: Literal["none", "mask", "penalty"] = "none"
    """Truncated completions: keep them, mask them out of the loss, or DAPO's soft length penalty."""
    overlong_buffer: int = Field(16, ge=1)
    """Soft penalty: the last this-many tokens before max_new_tokens are penalised linearly, down to -1."""
    vf_coef: float = Field(0.5, ge=0)
    """PPO (advantage: gae): weight of the critic's value loss."""
    value_clip: float | None = Field(0.2, gt=0)
    """PPO: clip range of the value update (None = unclipped)."""
    critic_lr: float = Field(1e-3, gt=0)
    """PPO: learning rate of the critic."""
    gamma: float = Field(1.0, ge=0, le=1)
    """Discount (GAE and REINFORCE++ returns)."""
    lam: float = Field(0.95, ge=0, le=1)
    """GAE lambda."""
    checkpoint_every: int = Field(25, gt=0)
    """RL steps between checkpoints (a rerun resumes from the last)."""
    learners: int = Field(1, gt=0)
    """Data-parallel learners for the update: above 1, it runs on that many Ray actors (ray.learner_cpus
    / learner_gpus each; gloo on CPUs, NCCL on GPUs), each on its share of every minibatch with the
    whole minibatch's loss weights, their gradients summed: the same update as one learner's. Sampling
    stays in this process, which gets rank 0's weights after each update. Must divide every minibatch
    (prompts_per_step x group_size / minibatches sequences)."""
    tis_cap: float | None = Field(None, gt=0)
    """Truncated importance sampling (Yao et al. 2025, verl's and TRL's TIS): weight each token's policy
    loss by min(pi_old / pi_sampler, tis_cap), where pi_old is the trainer's probability of the token
    before the update and pi_sampler the sampler's (vLLM's kernels, bf16 decoding and another batch
    shape all make them differ). None = no correction; the mismatch is logged every step either way."""
    judge: str | None = None
    """A learned judge for the `judge` reward and the hacking-gap metrics: `prm` or `orm` (the judges the
    main job trained in its run folder) or a judge folder written by `reasonlab judge train`."""
    rollout_workers: int = Field(0, ge=0)
    """Ray actors that sample each step's rollouts (rl/rollout_workers.py), each holding a copy of the
    policy and sampling a contiguous share of the prompts with `ray.rollout_cpus` / `ray.rollout_gpus`;
    the weights are published to them after every update. The same seed gives the same rollouts as
    sampling in this process (0, the default). Needs the builtin sampler."""
    async_: bool = Field(False, alias="async")
    """`async` in YAML and --set: the rollout workers sample step t+1 while step t updates (one step
    off-policy); the policy loss's ratio is then taken against the sampler's log-probs (the behaviour
    policy) and `rollout/staleness` logs the lag. Needs rl.rollout_workers >= 1."""


class JudgeConfig(Strict):
    heads: list[Literal["prm", "orm", "pairwise"]] = Field(default_factory=lambda: ["prm", "orm"])
    """Reward models the main job trains after the base (empty = none): process (PRM), outcome (ORM),
    pairwise Bradley-Terry."""
    labels: Literal["exact", "montecarlo"] = "exact"
    """Step labels: exact (the task's verifier) or Monte-Carlo (continuations of the base from each step)."""
    continuations: int = Field(8, gt=0)
    """Monte-Carlo labels: continuations sampled from each step prefix (Math-Shepherd's N)."""
    soft_labels: bool = False
    """Monte-Carlo labels: train a PRM on each step's success rate (Math-Shepherd's soft estimation)
    instead of the hard "some continuation wins" label."""
    train_problems: int = Field(2000, gt=0)
    """Training problems; each gives its reference solution, one injected error and policy samples."""
    policy_samples: int = Field(4, ge=0)
    """Samples of the base per training problem, labelled like the rest (the distribution RL will judge)."""
    val_fraction: float = Field(0.1, gt=0, lt=1)
    """Share of the training problems held out for validation and early stopping."""
    eval_problems: int = Field(200, gt=0)
    """Test problems for the held-out evaluation (reference + injected error each) and best-of-N."""
    best_of_n: int = Field(16, gt=0)
    """Samples per test problem for best-of-N selection."""
    init: Literal["base", "scratch"] = "base"
    """Initialise the backbone from the pretrained base, or from random weights."""
    aggregation: Literal["min", "product", "last"] = "min"
    """How a PRM turns step scores into one solution score."""
    features: Literal["hidden", "hidden+likelihood"] = "hidden+likelihood"
    """What the head reads at each step: the backbone's hidden state, plus (hidden+likelihood) the base
    LM's log-probability of the step's least likely token and its running minimum (judges/models.py)."""
    train_backbone: bool = False
    """Fine-tune the backbone with the head; by default it stays frozen and only the head trains (a probe
    of what the base already knows, and a few seconds instead of minutes)."""
    lr: float = Field(3e-4, gt=0)
    """Learning rate of the backbone when it is fine-tuned (AdamW)."""
    head_lr: float = Field(1e-2, gt=0)
    """Learning rate of the read-out head (it starts at zero)."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay."""
    batch_size: int = Field(64, gt=0)
    """Solutions (PRM, ORM) or pairs (pairwise) per optimizer step."""
    max_steps: int = Field(4000, gt=0)
    """Most optimizer steps (a frozen backbone makes them cheap: the head reads cached inputs)."""
    eval_every: int = Field(200, gt=0)
    """Steps between validation passes."""
    patience: int = Field(5, gt=0)
    """Stop after this many validations without a lower validation loss (the best weights are kept)."""


class HFConfig(Strict):
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype of a Hugging Face model; auto = the run's `dtype` (bfloat16 on a GPU that has it, else
    float16; float32 on CPU)."""
    device: str = "auto"
    """Where a Hugging Face model runs; auto = the run's `device` (cuda if available, else cpu)."""
    chat_template: bool = True
    """Wrap prompts in the tokenizer's chat template (a user turn and the generation prompt) when it has one."""
    sampler: Literal["builtin", "hf", "vllm"] = "builtin"
    """Generation backend: the builtin sampler (the model's KV cache; a static cache and CUDA graphs on a
    GPU, see `decode`), Hugging Face `generate`, or vLLM (GPUs; in RL colocated with the trainer, weights
    pushed after every update)."""
    vllm_gpu_memory: float = Field(0.3, gt=0, le=1)
    """vLLM: the share of the GPU's memory its engine takes (weights + KV cache), the rest left to training."""
    vllm_sleep: bool = True
    """vLLM in RL: put the engine to sleep during each update (its KV cache freed, weights offloaded) and
    wake it before the next generation, as TRL and verl do when colocated."""
    lora_r: int = Field(0, ge=0)
    """LoRA rank for RL on a Hugging Face model (0 = train every weight); only the adapters train."""
    lora_alpha: float = Field(32.0, gt=0)
    """LoRA scaling numerator (the update is scaled by lora_alpha / lora_r)."""
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the LoRA input."""
    lora_targets: list[str] = Field(default_factory=list)
    """Module names that get adapters (empty = every linear layer but the LM head)."""


class RayConfig(Strict):
    """What each role declares to Ray when reasonlab runs on it (`--ray`, rl.rollout_workers, rl.learners,
    pretrain.learners; distributed/). Ray schedules a task or actor only on a node that has these
    resources free, and torch in it uses `*_cpus` threads."""

    task_cpus: float = Field(1.0, gt=0)
    """CPUs each grid task declares: a sweep cell (with its compute-matched arm), a sufficiency level, a
    control run."""
    task_gpus: float = Field(0.0, ge=0)
    """GPUs each grid task declares (fractions share a GPU)."""
    task_retries: int = Field(1, ge=0)
    """Times a grid task that raises or whose worker dies is retried before it is recorded as failed."""
    rollout_cpus: float = Field(1.0, gt=0)
    """CPUs each rollout worker declares."""
    rollout_gpus: float = Field(0.0, ge=0)
    """GPUs each rollout worker declares."""
    learner_cpus: float = Field(1.0, gt=0)
    """CPUs each data-parallel learner declares."""
    learner_gpus: float = Field(0.0, ge=0)
    """GPUs each data-parallel learner declares (1 each to train on GPUs, one per rank)."""
    object_store_mb: int = Field(512, gt=0)
    """Object store of a Ray that reasonlab starts itself (`--ray local`): Ray's own default takes 30% of
    the memory, too much beside the models on a small machine; capped by the free space of /dev/shm."""


class TrackingConfig(Strict):
    tensorboard: bool = False
    """Also write TensorBoard event files (needs the `tensorboard` package)."""


class RunConfig(Strict):
    name: str = "default"
    """Run name (the default output folder is runs/<name>)."""
    seed: int = 0
    """Seed for data generation, initialisation, training and sampling."""
    device: str = "auto"
    """Where every model of the run trains and samples: auto (cuda if available, else cpu), cpu, cuda,
    cuda:1, ... (`hf.device` overrides it for a Hugging Face model)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Compute precision. The tiny transformer keeps float32 weights and runs its matrix products in
    bfloat16 / float16 (autocast; decoding reads bf16 copies of the weights and a bf16 KV cache); a Hugging
    Face model is loaded in this dtype. auto = bfloat16 on a GPU that has it, float16 on one that does not;
    on CPU float32, except bfloat16 for a tiny transformer of d_model >= 256 on a CPU with AMX, where it
    measured faster (models/precision.py, benchmarks/README.md)."""
    decode: Literal["auto", "static", "eager"] = "auto"
    """The builtin sampler's decoding loop: static = a preallocated KV cache and the decode step (sampling
    included) captured as CUDA graphs on a GPU (run uncaptured on CPU); eager = step by step with the model's
    own cache; auto = static on a GPU for the models that have it (the tiny transformer, Hugging Face
    Llama, Qwen2, Qwen3, Mistral), eager otherwise."""
    task: TaskConfig = Field(default_factory=TaskConfig)
    traces: TracesConfig = Field(default_factory=TracesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    rl: RLConfig = Field(default_factory=RLConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    hf: HFConfig = Field(default_factory=HFConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    def model_options(self) -> dict[str, Any]:
        """What `load_policy` needs to place and run any model of this run: the `hf` fields, with the
        run's device, dtype and decode filling in hf's `auto`."""
        options = self.hf.model_dump()
        options["device"] = self.device if self.hf.device == "auto" else self.hf.device
        options["dtype"] = self.dtype if self.hf.dtype == "auto" else self.hf.dtype
        options["decode"] = self.decode
        return options


class SufficiencySettings(Strict):
    """How much to sample and train for one sufficiency measurement (the `reasonlab sufficiency` options)."""

    n: int = Field(256, ge=1)
    """Samples per problem at every level: pass@k for k = 1..n."""
    n_problems: int = Field(100, ge=1)
    """Test problems per level."""
    best_of: int = Field(16, ge=1)
    """The first N samples of each problem scored by the judge."""
    control_steps: int = Field(30, ge=0)
    """GRPO steps of each random-reward control run (0 skips the control)."""
    control_samples: int = Field(32, ge=1)
    """Samples per problem measuring the control runs' pass@1."""
    temperature: float = Field(1.0, ge=0)
    """Sampling temperature."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Nucleus sampling threshold."""
    max_new_tokens: int = Field(64, ge=1)
    """Longest completion."""
    batch_size: int = Field(256, ge=1)
    """Sequences generated at once."""


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """Read a YAML config (the embedded default when `path` is None) and apply dotted overrides."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw = _read_yaml(path)
    for item in overrides:
        _apply_override(raw, item)
    return _validate(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "config") -> RunConfig:
    return _validate(raw, source)


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def read_yaml(path: Path, what: str = "config") -> Any:
    """The parsed YAML file (any value); ConfigError naming the file (and line) if missing or malformed."""
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"malformed YAML in {path}{where}: {getattr(err, 'problem', err)}"
        ) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    raw = read_yaml(path)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of fields, got {type(raw).__name__}")
    return raw


def _apply_override(raw: dict[str, Any], item: str) -> None:
    """`a.b.c=value`: value parsed as YAML (numbers, booleans, lists); the path must name a field."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {item!r}")
    parts = key.strip().split(".")
    _check_path(parts, item)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: cannot parse value {text!r}") from None
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _check_path(parts: list[str], item: str) -> None:
    """Reject an override whose dotted path is not a config field (free-form dicts end the check)."""
    model: type[BaseModel] | None = RunConfig
    for i, part in enumerate(parts):
        if model is None:
            return
        fields = {f.alias or name: f for name, f in model.model_fields.items()}  # YAML keys
        field = fields.get(part) or model.model_fields.get(part)
        if field is None:
            prefix = ".".join(parts[:i]) or "config"
            known = ", ".join(fields)
            raise ConfigError(
                f"unknown --set key {'.'.join(parts[: i + 1])!r} ({prefix} has: {known})"
            )
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if model is None and i < len(parts) - 1 and not _is_free_dict(ann):
            raise ConfigError(
                f"unknown --set key {item.partition('=')[0]!r}: {part} has no sub-fields"
            )


def _is_free_dict(ann: Any) -> bool:
    return getattr(ann, "__origin__", None) is dict


def _validate(raw: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "config"
        msg = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{source}: {loc}: {msg}") from None
