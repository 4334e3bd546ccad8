"""CharTokenizer: ids of specials, exact round trip, unknown characters, save/restore."""

import pytest

from reasonlab.models import CharTokenizer


def test_special_ids_and_vocab():
    tok = CharTokenizer()
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    assert tok.vocab_size == 4 + 1 + 95  # specials, "\n", printable ASCII 32..126
    assert tok.encode("\n") == [4]
    assert tok.encode(" ~") == [5, 99]


def test_round_trip_is_exact_for_ascii():
    tok = CharTokenizer()
    text = "".join(chr(c) for c in range(32, 127)) + "\n12 + 7 = 19\nAnswer: 19\n"
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert all(i >= 4 for i in ids)  # no specials added
    assert tok.decode(ids) == text


def test_unknown_characters_map_to_unk_and_decode_to_nothing():
    tok = CharTokenizer()
    ids = tok.encode("a\tb\u00e9")
    assert ids[1] == ids[3] == 3
    assert tok.decode(ids) == "ab"


def test_decode_skips_specials_and_accepts_tensors():
    torch = pytest.importorskip("torch")
    tok = CharTokenizer()
    ids = [tok.bos_id, *tok.encode("hi"), tok.eos_id, tok.pad_id]
    assert tok.decode(ids) == "hi"
    assert tok.decode(torch.tensor(ids)) == "hi"
    with pytest.raises(ValueError):
        tok.decode([tok.vocab_size])


def test_dict_round_trip():
    tok = CharTokenizer("abc\n")
    again = CharTokenizer.from_dict(tok.to_dict())
    assert again.vocab_size == 8 and again.encode("cab\n") == tok.encode("cab\n")
    with pytest.raises(ValueError):
        CharTokenizer.from_dict({"kind": "bpe"})
