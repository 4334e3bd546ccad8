"""Learned reward models on the tiny transformer backbone: outcome (ORM), process (PRM) and pairwise.

A reward model is the decoder backbone with its LM head replaced by a linear head giving one logit
per read position. The solution is laid out as `<bos> prompt step_0 "\\n" step_1 "\\n" ...` and the
head is read at the newline that ends each step (TRL's PRM reads a separator token the same way):

    prm        logit_i = log-odds that the solution is still right after step i (Lightman et al. 2023;
               trained on every step's label)
    orm        the same head trained only at the last step's newline on "the final answer is right"
               (Cobbe et al. 2021); read at earlier steps it is a value estimate of the prefix
    pairwise   a Bradley-Terry reward r at the last newline, trained on -log sigmoid(r_better - r_worse)
               (Ouyang et al. 2022); its score sigmoid(r) is the probability of beating a solution of
               reward 0, not of being right

With `features: hidden+likelihood` (the default) the head also reads two numbers per step from a
frozen copy of the starting backbone (the base LM): the log-probability of the step's least likely
token, and its running minimum over the steps so far. This departs from the PRM papers, whose head
reads the hidden state alone: a base that knows the rules is surprised by a wrong step
(judges/likelihood.py), and giving the head that surprise directly is far cheaper than having the
fine-tuned backbone rediscover it (on the default task it is the difference between a step F1 of
about 0.75 and above 0.9 for the same training budget; benchmarks/README.md).

Precision: the read-out heads are float32 whatever the backbone's dtype, and what the backbone gives
them (hidden states, likelihood features from its logits) is cast to float32 before they read it. A
head starts at zero and trains at a high learning rate (`head_lr`, 1e-2) with BCE on small logits, and
in bfloat16 (8 significant bits) a step smaller than about 1/256 of a weight rounds away: the head would
stall as its weights grow, long before it fits. The backbone's activations, the large tensors, are what
a bfloat16 / float16 backbone saves memory on, and they keep its dtype. A judge folder stores each
part in its own dtype and `load_judge` keeps them so.

`LearnedJudge` wraps a model as a Judge (judges/base.py): step scores are sigmoid(logit) at each step,
the overall score is the PRM's aggregate (min / product / last) or the ORM / pairwise score at the end.
Saved as `model.safetensors` + `config.json` ({"kind": "judge", ...}) in one folder. Usage:

    judge = load_judge("runs/demo/judges/prm"); scores = judge.score(records)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import ValidationError
from safetensors.torch import save_file
from torch import nn

from reasonlab.errors import CheckpointError
from reasonlab.fileio import atomic_write
from reasonlab.judges.base import AGGREGATIONS, aggregate, regroup
from reasonlab.models.checkpoint import CONFIG, WEIGHTS, _load_tensors, read_config
from reasonlab.models.precision import resolve_device, tiny_dtype
from reasonlab.models.tokenizer import CharTokenizer
from reasonlab.models.transformer import Transformer, TransformerConfig
from reasonlab.types import JudgeScores, StepRecord

Head = Literal["prm", "orm", "pairwise"]
HEADS: tuple[str, ...] = ("prm", "orm", "pairwise")
FEATURES: tuple[str, ...] = ("hidden", "hidden+likelihood")
MIN_LOGP = -20.0  # token log-probabilities are clamped here (a feature, not a loss)


class RewardModel(nn.Module):
    """The transformer backbone and a one-logit head read at the end of each step.

    With `likelihood`, the head also reads the step's likelihood features, computed by `reference` (a
    frozen copy of the starting LM, when the backbone is fine-tuned) or by the backbone itself (when it
    is frozen and only the head trains)."""

    def __init__(
        self, backbone: Transformer, likelihood: bool = True, reference: Transformer | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.cfg.d_model, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.likelihood = likelihood
        self.reference = reference
        self.feature_head = nn.Linear(2, 1, bias=False) if likelihood else None
        if self.feature_head is not None:
            nn.init.zeros_(self.feature_head.weight)
        if reference is not None:
            reference.requires_grad_(False)

    def head_parameters(self) -> list[nn.Parameter]:
        """The parameters of the read-out (trained at the head learning rate)."""
        return [
            *self.head.parameters(),
            *(self.feature_head.parameters() if self.feature_head else []),
        ]

    def inputs(self, enc: Encoded) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the head reads at every step end, in float32 (the backbone's dtype may be lower): hidden
        states (S, D) and likelihood features (S, 2) or None."""
        enc = enc.to(self.head.weight.device)
        hidden = self.backbone(enc.input_ids, enc.attention_mask, hidden=True)  # (B, T, D)
        h = hidden[enc.rows, enc.cols].float()  # (S, D)
        if not self.likelihood:
            return h, None
        if self.reference is not None:
            with torch.no_grad():
                was_training = self.reference.training
                logits = self.reference.eval()(enc.input_ids, enc.attention_mask)  # (B, T, V)
                self.reference.train(was_training)
        else:  # the backbone's own LM head on its (frozen) hidden states
            logits = hidden.detach() @ self.backbone.head_weight().detach().t()  # (B, T, V)
        return h, likelihood_features(logits, enc)  # (S, D), (S, 2) float32

    def read(self, h: torch.Tensor, feats: torch.Tensor | None) -> torch.Tensor:  # (N,)
        """Float32 logits from read-out inputs h (N, D) and feats (N, 2) | None, of any dtype."""
        logits = self.head(h.float()).squeeze(-1)  # (N,)
        if feats is None:
            return logits
        return logits + self.feature_head(feats.float()).squeeze(-1)  # (N,)

    def heads_float32(self) -> RewardModel:
        """The read-out heads in float32 (the backbone keeps its dtype); returns the model."""
        self.head.float()
        if self.feature_head is not None:
            self.feature_head.float()
        return self

    def forward(self, enc: Encoded) -> torch.Tensor:  # (S,) logits at every step end, record-major
        return self.read(*self.inputs(enc))


@torch.no_grad()
def likelihood_features(logits: torch.Tensor, enc: Encoded) -> torch.Tensor:  # (S, 2)
    """From LM logits (B, T, V): per step, the log-probability of its least likely token, and the running
    minimum of that over the record's steps so far (clamped at MIN_LOGP, divided by -MIN_LOGP); float32
    whatever the logits' dtype."""
    logp = logits.float().log_softmax(-1)  # (B, T, V)
    token = (
        logp[:, :-1].gather(-1, enc.input_ids[:, 1:, None]).squeeze(-1)
    )  # (B, T-1): log p(token t+1)
    t = torch.arange(token.shape[1], device=token.device)  # (T-1,)
    inside = (t[None] >= enc.starts[:, None] - 1) & (t[None] <= enc.cols[:, None] - 1)  # (S, T-1)
    step_min = token[enc.rows].masked_fill(~inside, 0.0).amin(-1).clamp(min=MIN_LOGP)  # (S,)
    running, at = [], 0
    for n in enc.counts:
        running.append(step_min[at : at + n].cummin(0).values)
        at += n
    return torch.stack([step_min, torch.cat(running)], -1) / -MIN_LOGP  # (S, 2)


@dataclass(frozen=True)
class Encoded:
    """A batch laid out for the model: tokens and, per step, where its end is read."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    rows: torch.Tensor  # (S,) one entry per step of every record, record-major
    cols: torch.Tensor  # (S,) the column of the newline that ends the step
    starts: torch.Tensor  # (S,) the column of the step's first token
    counts: list[int]  # steps per record

    def to(self, device: torch.device) -> Encoded:
        """The same batch with its tensors on `device` (the model's)."""
        move = lambda t: t.to(device)  # noqa: E731
        return Encoded(
            move(self.input_ids),
            move(self.attention_mask),
            move(self.rows),
            move(self.cols),
            move(self.starts),
            self.counts,
        )


def token_layout(tokenizer: Any, record: StepRecord) -> tuple[list[int], list[int]]:
    """The ids of `<prompt> steps...` (the prompt as `tokenizer.encode_prompt` conditions a completion on it)
    and the index of the token that ends each step (its newline)."""
    prompt = record.prompt if record.prompt.endswith("\n") else record.prompt + "\n"
    ids = list(tokenizer.encode_prompt(prompt))
    ends = []
    for step in record.steps:
        ids += tokenizer.encode(step + "\n")
        ends.append(len(ids) - 1)
    return ids, ends


def encode(tokenizer: Any, records: Sequence[StepRecord]) -> Encoded:
    """Left-pad the records' layouts into one batch and collect every step's read position."""
    layouts = [token_layout(tokenizer, r) for r in records]
    width = max(len(ids) for ids, _ in layouts)
    input_ids = torch.full((len(records), width), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros(len(records), width, dtype=torch.long)
    rows, cols, starts = [], [], []
    for i, (ids, ends) in enumerate(layouts):
        pad = width - len(ids)
        input_ids[i, pad:] = torch.tensor(ids)
        mask[i, pad:] = 1
        rows += [i] * len(ends)
        cols += [pad + e for e in ends]
        first = ends[0] - len(tokenizer.encode(records[i].steps[0] + "\n")) + 1 if ends else 0
        starts += [pad + s for s in [first, *(e + 1 for e in ends[:-1])][: len(ends)]]
    as_long = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return Encoded(
        input_ids,
        mask,
        as_long(rows),
        as_long(cols),
        as_long(starts),
        [len(ends) for _, ends in layouts],
    )


class LearnedJudge:
    """A trained reward model as a Judge. `threshold` is the step score below which a step is called
    wrong (tuned on held-out data when the model was trained; 0.5 otherwise)."""

    def __init__(
        self,
        model: RewardModel,
        tokenizer: CharTokenizer,
        head: str,
        aggregation: str = "min",
        threshold: float = 0.5,
        batch_size: int = 64,
    ) -> None:
        self.features = "hidden+likelihood" if model.likelihood else "hidden"
        if head not in HEADS:
            raise ValueError(f"unknown judge head {head!r} (known: {', '.join(HEADS)})")
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f"unknown aggregation {aggregation!r} (known: {', '.join(AGGREGATIONS)})"
            )
        self.model, self.tokenizer, self.head = model, tokenizer, head
        self.aggregation, self.threshold, self.batch_size = aggregation, threshold, batch_size
        self.name = head

    @classmethod
    def from_backbone(
        cls,
        backbone: Transformer,
        tokenizer: CharTokenizer,
        head: str,
        features: str = "hidden+likelihood",
        train_backbone: bool = False,
        **kw: Any,
    ) -> LearnedJudge:
        """A new judge whose backbone is a copy of `backbone` (e.g. a pretrained base) and a zero head.
        A frozen backbone (`train_backbone` False) computes the likelihood features itself; a fine-tuned
        one gets a second, frozen copy of `backbone` for them."""
        if features not in FEATURES:
            raise ValueError(f"unknown judge features {features!r} (known: {', '.join(FEATURES)})")
        likelihood = features == "hidden+likelihood"
        reference = copy.deepcopy(backbone) if likelihood and train_backbone else None
        model = RewardModel(copy.deepcopy(backbone), likelihood, reference)
        # the heads join the backbone's device and stay float32 (the module docstring says why)
        model.to(next(backbone.parameters()).device)
        model.backbone.requires_grad_(train_backbone)
        return cls(model, tokenizer, head, **kw)

    @torch.no_grad()
    def score(self, records: Sequence[StepRecord]) -> list[JudgeScores]:
        was_training = self.model.training
        self.model.eval()
        order = sorted(
            range(len(records)),
            key=lambda i: len(records[i].prompt) + sum(map(len, records[i].steps)),
        )
        scored: dict[int, JudgeScores] = {}
        for start in range(
            0, len(order), self.batch_size
        ):  # similar lengths together: less padding
            chunk = order[start : start + self.batch_size]
            for i, s in zip(chunk, self._score_batch([records[i] for i in chunk])):
                scored[i] = s
        out = [scored[i] for i in range(len(records))]
        self.model.train(was_training)
        return out

    def _score_batch(self, records: Sequence[StepRecord]) -> list[JudgeScores]:
        live = [r for r in records if r.steps]
        probs = torch.sigmoid(self.model(encode(self.tokenizer, live))).tolist() if live else []
        overall = (
            (lambda steps: aggregate(steps, self.aggregation))
            if self.head == "prm"
            else (lambda steps: steps[-1])
        )
        return regroup(
            records, probs, overall, empty=0.5
        )  # no step to read: no evidence either way

    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Write the model and its settings to `directory` (atomically, file by file)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {
            k: v.detach().cpu().clone().contiguous() for k, v in self.model.state_dict().items()
        }
        meta = {
            "kind": "judge",
            "head": self.head,
            "features": self.features,
            "aggregation": self.aggregation,
            "threshold": self.threshold,
            "model": self.model.backbone.cfg.model_dump(),
            "tokenizer": self.tokenizer.to_dict(),
            **(extra or {}),
        }
        atomic_write(d / WEIGHTS, lambda p: save_file(tensors, str(p), metadata={"kind": "judge"}))
        if hasattr(
            self.tokenizer, "tok"
        ):  # a Hugging Face backbone: its tokenizer files beside the weights
            self.tokenizer.tok.save_pretrained(d)
        atomic_write(d / CONFIG, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))


def load_judge(directory: str | Path, options: Mapping[str, Any] | None = None) -> LearnedJudge:
    """Load a judge written by `LearnedJudge.save`, on the device the run's `options` name (as for
    `load_policy`: `device`, and `dtype` for a tiny backbone's compute); CheckpointError naming the file
    if it cannot."""
    d, meta = read_config(directory)
    cfg_path = d / CONFIG
    if meta.get("kind") != "judge":
        raise CheckpointError(
            f"{cfg_path} is not a judge (kind {meta.get('kind')!r}); "
            "write one with `reasonlab judge train`"
        )
    hf = meta.get("model", {}).get("hf") if isinstance(meta.get("model"), dict) else None
    try:
        config = TransformerConfig.model_validate(meta.get("model")) if hf is None else None
        tokenizer = CharTokenizer.from_dict(meta.get("tokenizer")) if hf is None else None  # type: ignore[arg-type]
        head, aggregation, threshold = (
            meta["head"],
            meta.get("aggregation", "min"),
            float(meta.get("threshold", 0.5)),
        )
        features = meta.get("features", "hidden")
        if head not in HEADS or aggregation not in AGGREGATIONS or features not in FEATURES:
            raise ValueError(
                f"head {head!r}, aggregation {aggregation!r} or features {features!r} unknown"
            )
    except (ValidationError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"invalid judge config {cfg_path}: {' '.join(str(e).split())}"
        ) from None
    tensors = _load_tensors(d / WEIGHTS)
    likelihood = features == "hidden+likelihood"
    has_reference = any(k.startswith("reference.") for k in tensors)
    if (
        hf is not None
    ):  # a Hugging Face backbone: rebuilt from its stored config, tokenizer read from the folder
        from reasonlab.models.hf import backbone_from_config, load_tokenizer

        tokenizer = load_tokenizer(d, bool(meta.get("tokenizer", {}).get("chat_template", True)))
        model = RewardModel(
            backbone_from_config(hf),
            likelihood,
            backbone_from_config(hf) if has_reference else None,
        )
    else:
        with torch.device("meta"):
            reference = Transformer(config) if has_reference else None
            model = RewardModel(Transformer(config), likelihood, reference)
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as e:
        raise CheckpointError(
            f"judge weights {d / WEIGHTS} do not fit {cfg_path}: {' '.join(str(e).split())}"
        ) from None
    return LearnedJudge(
        place(model.heads_float32(), options or {}), tokenizer, head, aggregation, threshold
    )


def place(model: RewardModel, options: Mapping[str, Any]) -> RewardModel:
    """The reward model on the options' device; a tiny backbone (and its reference) computes in the
    options' dtype (models/precision.py), a Hugging Face one keeps the dtype it was saved in."""
    device = resolve_device(options.get("device"))
    for body in (model.backbone, model.reference):
        if isinstance(body, Transformer):
            body.compute_dtype = tiny_dtype(options.get("dtype", "auto"), device, body.cfg.d_model)
    return model.to(device)


def find_judge(spec: str, *run_dirs: Path) -> Path:
    """A judge folder from `spec`: a head name (prm, orm, pairwise) looked up as <run>/judges/<head> in
    each of `run_dirs` in turn, or a folder path. CheckpointError naming what was tried."""
    if spec in HEADS:
        tried = [Path(d) / "judges" / spec for d in run_dirs]
        for folder in tried:
            if (folder / CONFIG).is_file():
                return folder
        raise CheckpointError(
            f"rl.judge: no trained {spec} judge in {', '.join(map(str, tried))}; "
            "train one with `reasonlab judge train` or `reasonlab run`"
        )
    if not Path(spec).is_dir():
        raise CheckpointError(
            f"rl.judge: {spec} is neither a judge folder nor one of {', '.join(HEADS)} "
            "(the judges a run trained)"
        )
    return Path(spec)
