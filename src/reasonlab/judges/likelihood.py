"""The base model as a judge, with no training: how likely it finds each step (a likelihood verifier).

A step's score is the probability the policy gave to the least likely token of the step (its text
and the newline that ends it): exp(min_t log p(token_t | everything before)). A model that knows the
rules puts little mass on a wrong result, a wrong operand or a skipped operation, so its own
surprise marks the wrong step; this measures how much of a judge is already in the base ("the facts
are in there"). Scores are probabilities of single tokens, not calibrated probabilities that the
step is right; the threshold tuned by the ProcessBench protocol does the calibration it needs.
Usage:

    LikelihoodJudge(load_policy("runs/default/base")).score(records)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reasonlab.judges.base import aggregate, regroup
from reasonlab.judges.models import MIN_LOGP, encode, likelihood_features
from reasonlab.models import Policy
from reasonlab.models.base import module_device
from reasonlab.types import JudgeScores, StepRecord


class LikelihoodJudge:
    """Scores steps by the policy's probability of their least likely token."""

    name = "likelihood"

    def __init__(self, policy: Policy, aggregation: str = "min", batch_size: int = 64) -> None:
        self.policy, self.aggregation, self.batch_size = policy, aggregation, batch_size

    def score(self, records: Sequence[StepRecord]) -> list[JudgeScores]:
        out: list[JudgeScores] = []
        for start in range(0, len(records), self.batch_size):
            out += self._score_batch(records[start : start + self.batch_size])
        return out

    def _score_batch(self, records: Sequence[StepRecord]) -> list[JudgeScores]:
        live = [r for r in records if r.steps]
        mins: list[float] = []
        if live:
            enc = encode(self.policy.tokenizer, live).to(module_device(self.policy))
            with torch.no_grad():
                logits = self.policy.logits(enc.input_ids, enc.attention_mask)  # (B, T, V)
            mins = (likelihood_features(logits, enc)[:, 0] * -MIN_LOGP).exp().tolist()  # (S,)
        return regroup(records, mins, lambda steps: aggregate(steps, self.aggregation), empty=0.0)
