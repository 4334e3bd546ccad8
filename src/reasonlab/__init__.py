"""reasonlab: build o1-style reasoning models and measure what makes them work.

The public API, by name; everything else is internal. Usage:

    import reasonlab
    task = reasonlab.get_task("arith", n_operands=3, digits=2)
    reasonlab.pass_at_k(n=64, c=5, k=8)
    reasonlab.train_rl(reasonlab.load_config("configs/default.yaml"), run_dir, base_dir)
    policy = reasonlab.load_policy("models/Qwen2.5-0.5B-Instruct")   # a local Hugging Face folder
"""

from reasonlab.config import RunConfig, load_config
from reasonlab.errors import CheckpointError, ConfigError, ReasonlabError, RunFolderError
from reasonlab.evaluate.passk import majority_at_k, pass_at_k, pass_at_k_curve
from reasonlab.evaluate.processbench import (
    auroc,
    best_of_n,
    ece,
    judge_step_metrics,
    processbench_metrics,
)
from reasonlab.evaluate.runner import SamplingParams, evaluate_policy
from reasonlab.evaluate.sufficiency import (
    edge_of_competence,
    generation_verification_gap,
    level_metrics,
)
from reasonlab.evaluate.verdict import verdict
from reasonlab.judges import (
    Judge,
    JudgeScores,
    StepRecord,
    load_judge,
    read_records,
    train_reward_model,
)
from reasonlab.models import (
    CharTokenizer,
    Policy,
    TinyPolicy,
    TransformerConfig,
    load_policy,
    save_policy,
)
from reasonlab.rl.advantages import register_advantage
from reasonlab.rl.losses import register_aggregation, register_kl_estimator, register_policy_loss
from reasonlab.rl.rewards import register_reward
from reasonlab.rl.trainer import make_learner, rl_step, train_rl
from reasonlab.sampling import generate
from reasonlab.tasks import Task, get_task, list_tasks, register_task
from reasonlab.tasks.base import register_family
from reasonlab.tasks.traces import TRACE_STYLES, Mixture, render
from reasonlab.types import Outcome, Problem, Rollout, Scored, Verdict

__all__ = [
    "CharTokenizer",
    "CheckpointError",
    "Judge",
    "JudgeScores",
    "StepRecord",
    "auroc",
    "best_of_n",
    "ece",
    "judge_step_metrics",
    "load_judge",
    "processbench_metrics",
    "read_records",
    "train_reward_model",
    "ConfigError",
    "Mixture",
    "Outcome",
    "Policy",
    "Problem",
    "ReasonlabError",
    "Rollout",
    "RunConfig",
    "RunFolderError",
    "SamplingParams",
    "Scored",
    "TRACE_STYLES",
    "Task",
    "TinyPolicy",
    "TransformerConfig",
    "Verdict",
    "evaluate_policy",
    "generate",
    "get_task",
    "list_tasks",
    "load_config",
    "load_policy",
    "majority_at_k",
    "make_learner",
    "pass_at_k",
    "pass_at_k_curve",
    "register_advantage",
    "register_aggregation",
    "register_kl_estimator",
    "register_policy_loss",
    "register_reward",
    "register_task",
    "render",
    "rl_step",
    "save_policy",
    "train_rl",
    "edge_of_competence",
    "generation_verification_gap",
    "level_metrics",
    "register_family",
    "verdict",
]
