"""Pretraining the tiny base model from scratch: the corpus (corpus.py) and the training loop (trainer.py)."""

from reasonlab.pretrain.corpus import build_stream, corpus_mixture, get_batch
from reasonlab.pretrain.trainer import continue_pretraining, pretrain

__all__ = ["build_stream", "continue_pretraining", "corpus_mixture", "get_batch", "pretrain"]
