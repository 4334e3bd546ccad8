"""Judges: everything that scores a solution as a whole and step by step.

The Judge protocol and step-labelled records (base.py), exact / Monte-Carlo / file data (data.py,
montecarlo.py, errors.py for injected errors, files.py), learned reward models and their training (models.py,
train.py), the task verifier and training-free baselines as judges (verifier.py, baselines.py), and
the main job's judges stage (stage.py). Usage:

    from reasonlab.judges import load_judge, read_records
    result = read_records("processbench_gsm8k.json")
    scores = load_judge("runs/default/judges/prm").score(result.records)
"""

from reasonlab.judges.base import AGGREGATIONS, Judge, aggregate, score_solutions
from reasonlab.judges.baselines import BASELINES, AlwaysCorrect, SymbolicArithmetic
from reasonlab.judges.data import eval_records, record_from_text
from reasonlab.judges.errors import ERROR_KINDS, inject
from reasonlab.judges.files import read_records, resolve_data, write_records
from reasonlab.judges.models import LearnedJudge, RewardModel, load_judge
from reasonlab.judges.montecarlo import montecarlo_labels, policy_continuer, reference_continuer
from reasonlab.judges.train import train_reward_model
from reasonlab.judges.verifier import VerifierJudge
from reasonlab.types import JudgeScores, StepRecord

__all__ = [
    "AGGREGATIONS",
    "AlwaysCorrect",
    "BASELINES",
    "ERROR_KINDS",
    "Judge",
    "JudgeScores",
    "LearnedJudge",
    "RewardModel",
    "StepRecord",
    "SymbolicArithmetic",
    "VerifierJudge",
    "aggregate",
    "eval_records",
    "inject",
    "load_judge",
    "montecarlo_labels",
    "policy_continuer",
    "read_records",
    "record_from_text",
    "reference_continuer",
    "resolve_data",
    "score_solutions",
    "train_reward_model",
    "write_records",
]
