"""Character-level tokenizer for the tiny models: one id per character, four special tokens.

Ids: `<pad>`=0, `<bos>`=1, `<eos>`=2, `<unk>`=3, then "\\n" and printable ASCII 32..126 (vocab 100).
`encode` adds no specials and maps unknown characters to `<unk>`; `decode` skips specials, so
`decode(encode(s)) == s` for any text made of those characters. Unlike a BPE tokenizer (the
reference a Hugging Face policy uses) there are no merges: the sampler can check stop strings per
character. Usage:

    tok = CharTokenizer(); ids = tok.encode("12+7=19\\n"); assert tok.decode(ids) == "12+7=19\\n"
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SPECIALS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
DEFAULT_CHARS: str = "\n" + "".join(chr(c) for c in range(32, 127))


class CharTokenizer:
    """Maps each character of `chars` to one id, after the four special ids."""

    def __init__(self, chars: str = DEFAULT_CHARS) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("tokenizer characters must be distinct")
        self.chars = chars
        self._stoi = {c: i + len(SPECIALS) for i, c in enumerate(chars)}
        self._itos = [""] * len(SPECIALS) + list(chars)  # specials decode to ""

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.chars)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def bos_id(self) -> int:
        return 1

    @property
    def eos_id(self) -> int:
        return 2

    @property
    def unk_id(self) -> int:
        return 3

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of `text` (no BOS/EOS added); unknown characters become `<unk>`."""
        unk = self.unk_id
        return [self._stoi.get(c, unk) for c in text]

    def encode_prompt(self, prompt: str) -> list[int]:
        """The ids a completion is conditioned on: BOS then the prompt."""
        return [self.bos_id, *self.encode(prompt)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids` (a list, tuple or 1-D tensor), skipping special tokens."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        itos, n = self._itos, len(self._itos)
        out = []
        for i in ids:
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is outside the vocabulary (size {n})")
            out.append(itos[i])
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description, stored in a checkpoint's config.json."""
        return {"kind": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        if (
            not isinstance(data, dict)
            or data.get("kind") != "char"
            or not isinstance(data.get("chars"), str)
        ):
            raise ValueError("tokenizer entry must be {'kind': 'char', 'chars': <str>}")
        return cls(data["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
