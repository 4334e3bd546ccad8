"""Tests for the `chess` task: mate search, generation, the move verifier, listed positions, knobs.

Run: .venv/bin/pytest tests/test_tasks_chess.py -q
"""

from __future__ import annotations

import random
import re

import chess
import pytest

from reasonlab.errors import ConfigError, DataError, ReasonlabError
from reasonlab.tasks.base import get_task
from reasonlab.tasks.chess import ChessTask, read_move
from reasonlab.tasks.chess_search import checking_moves, forces_mate, random_board, solve
from reasonlab.tasks.parsing import solution_steps
from reasonlab.tasks.traces import Mixture, corpus, render
from reasonlab.types import Outcome, Problem

BACK_RANK = "6k1/5ppp/8/8/8/8/8/RR4K1 w - -"  # Ra8# and Rb8# both mate
BLACK_TO_MOVE = "r5k1/8/8/8/8/8/5PPP/6K1 b - -"  # Ra1#
PROMOTION = "k7/2P5/1K6/8/8/8/8/8 w - -"  # c8=Q# and c8=R#
CASTLING = "8/8/8/8/8/8/7Q/k3K2R w K -"  # O-O#
MATE_IN_2 = "2K5/2R5/3R4/4Q3/8/7k/8/8 w - -"  # Rg7 (quiet) Kh4 Rh6#
NO_MATE = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq -"


@pytest.fixture(scope="module")
def m1() -> ChessTask:
    return get_task("chess", mate_in=1)


@pytest.fixture(scope="module")
def m2() -> ChessTask:
    return get_task("chess", mate_in=2)


def listed(task: ChessTask, fen: str) -> Problem:
    board = chess.Board(fen)
    return task.problem_of(board, solve(board, task.mate_in))


def judge(task: ChessTask, problem: Problem, text: str) -> tuple:
    v = task.verify(problem, text)
    return v.outcome, v.answer, v.steps_valid, v.first_error


def naive_forces(board: chess.Board, move: chess.Move, n: int) -> bool:
    board.push(move)
    try:
        if board.is_checkmate():
            return True
        replies = list(board.legal_moves)
        return n > 1 and bool(replies) and all(naive_still_mates(board, r, n - 1) for r in replies)
    finally:
        board.pop()


def naive_still_mates(board: chess.Board, reply: chess.Move, n: int) -> bool:
    board.push(reply)
    try:
        return any(naive_forces(board, m, n) for m in list(board.legal_moves))
    finally:
        board.pop()


def naive_keys(board: chess.Board, n: int) -> set[str]:
    return {m.uci() for m in list(board.legal_moves) if naive_forces(board, m, n)}


# ---------------------------------------------------------------- mate search


def random_positions(seed: int, n: int) -> list[chess.Board]:
    """Random valid boards of either side to move, and positions of random games (castling, en
    passant and promotions)."""
    rng = random.Random(seed)
    boards = []
    while len(boards) < n:
        board = random_board(rng, rng.randint(1, 10))
        board.turn = rng.random() < 0.7
        if board.is_valid():
            boards.append(board)
    for _ in range(n // 50):
        board = chess.Board()
        for ply in range(rng.randint(0, 150)):
            moves = list(board.legal_moves)
            if not moves:
                break
            board.push(rng.choice(moves))
            if ply % 4 == 0:
                boards.append(board.copy(stack=False))
    return boards


def test_checking_moves_match_gives_check():
    boards = random_positions(0, 1500)
    special = (
        "4k3/8/8/3pP3/8/8/8/4K2R w K d6",
        "8/8/8/R2pP2k/8/8/8/4K3 w - d6",  # en passant
        "4k3/8/8/4B3/8/8/8/4R1K1 w - -",
    )  # discovered check
    boards += [
        chess.Board(f) for f in (BACK_RANK, BLACK_TO_MOVE, PROMOTION, CASTLING, NO_MATE, *special)
    ]
    for board in boards:
        want = sorted(m.uci() for m in board.legal_moves if board.gives_check(m))
        assert sorted(m.uci() for m in checking_moves(board)) == want, board.fen()


def test_search_matches_brute_force(m2):
    rng = random.Random(1)
    boards = [b for b in random_positions(2, 60) if len(b.piece_map()) <= 5][:12]
    boards += [chess.Board(m2.generate(rng).meta["fen"]) for _ in range(4)]
    boards += [chess.Board(MATE_IN_2), chess.Board(BACK_RANK)]
    for board in boards:
        for n in (1, 2):
            keys = naive_keys(board, n)
            assert {m.uci() for m in list(board.legal_moves) if forces_mate(board, m, n)} == keys
        shortest = 1 if naive_keys(board, 1) else 2 if naive_keys(board, 2) else None
        for n in (1, 2):
            line = solve(board, n)
            assert (line is not None) == (shortest == n), board.fen()
            if line is not None:
                assert line[0].uci() == min(naive_keys(board, n))  # the first key in UCI order


def test_hand_made_positions():
    assert [m.uci() for m in solve(chess.Board(BACK_RANK), 1)] == ["a1a8"]
    assert solve(chess.Board(BACK_RANK), 2) is None  # a mate in 1 is not a mate in 2
    assert [m.uci() for m in solve(chess.Board(BLACK_TO_MOVE), 1)] == ["a8a1"]
    assert [m.uci() for m in solve(chess.Board(PROMOTION), 1)] == ["c7c8q"]
    assert [m.uci() for m in solve(chess.Board(CASTLING), 1)] == ["e1g1"]
    assert [m.uci() for m in solve(chess.Board(MATE_IN_2), 2)] == ["c7g7", "h3h4", "d6h6"]
    assert solve(chess.Board(MATE_IN_2), 1) is None
    assert solve(chess.Board(NO_MATE), 1) is None and solve(chess.Board(NO_MATE), 2) is None


# ---------------------------------------------------------------- generation and references


@pytest.mark.parametrize(
    "mate_in,notation,count", [(1, "san", 40), (1, "uci", 40), (2, "san", 12), (2, "uci", 12)]
)
def test_generated_references_verify(mate_in, notation, count):
    task = get_task("chess", mate_in=mate_in, notation=notation)
    rng = random.Random(mate_in)
    for _ in range(count):
        p = task.generate(rng)
        assert re.fullmatch(rf"mate in {mate_in}: [1-8pnbrqkPNBRQK/]+ w - -\n", p.prompt)
        assert len(p.prompt) < 80 and p.difficulty == mate_in and p.meta["mate_in"] == mate_in
        board = chess.Board(p.meta["fen"])
        assert len(board.piece_map()) == 2 + task.pieces and board.is_valid()
        steps = task.reference_steps(p)
        assert len(steps) == 2 * mate_in - 1 and steps[0] == p.answer
        assert steps == list(p.meta[f"pv_{notation}"])
        assert solve(board, mate_in) is not None and (mate_in == 1 or solve(board, 1) is None)
        text = "\n".join(steps) + f"\nanswer: {p.answer}\n"
        v = task.verify(p, text)
        assert (v.outcome, v.answer, v.steps_valid, v.first_error) == (
            Outcome.CORRECT,
            p.answer,
            (True,) * len(steps),
            -1,
        )
        assert len(solution_steps(text)) == len(v.steps_valid)
        assert task.verify(p, f"answer: {p.answer}\n").correct  # answer-only
        for index, move in enumerate(p.meta["pv_uci"]):  # wrong steps; the line ends in mate
            wrong = task.wrong_step(p, index, rng)
            assert read_move(board, wrong) == (True, None)  # a move, illegal here
            v = task.verify(p, "\n".join(steps[:index] + [wrong]) + "\n")
            assert v.steps_valid == (True,) * index + (False,) and v.first_error == index
            board.push_uci(move)
        assert board.is_checkmate()


@pytest.mark.parametrize("mate_in", [1, 2])
def test_backtrack_traces_verify(mate_in):
    task = get_task("chess", mate_in=mate_in)
    rng = random.Random(7)
    for _ in range(8 if mate_in == 1 else 4):
        p = task.generate(rng)
        for error_rate in (0.5, 1.0):
            text = render(task, p, "backtrack", rng, error_rate=error_rate)
            v = task.verify(p, text)
            assert v.correct and v.first_error == -1, text
            assert len(solution_steps(text)) == len(v.steps_valid)
        text = render(task, p, "backtrack", rng, error_rate=1.0)
        assert task.verify(p, text).backtracks == 2 * mate_in - 1


def test_corpus_builds(m1):
    docs = corpus(m1, n=200, mixture=Mixture({"steps": 1, "backtrack": 1}), seed=0)
    assert len(docs) == 200 == len(set(docs))
    assert all(d.startswith("mate in 1: ") and d.endswith("\n") for d in docs)
    assert docs == corpus(m1, n=200, mixture=Mixture({"steps": 1, "backtrack": 1}), seed=0)


def test_determinism(m1, m2):
    for task in (m1, m2):
        assert task.sample("train", 10, seed=4) == task.sample("train", 10, seed=4)
    a = [m1.generate(random.Random(s)) for s in range(10)]
    assert a == [m1.generate(random.Random(s)) for s in range(10)]
    uci = get_task("chess", mate_in=1, notation="uci")
    b = [uci.generate(random.Random(s)) for s in range(10)]
    assert [p.meta["fen"] for p in a] == [p.meta["fen"] for p in b]  # same positions
    assert [p.answer for p in b] == [p.meta["pv_uci"][0] for p in a]
    test = m1.sample("test", 20, seed=4)
    assert {p.prompt for p in test}.isdisjoint(p.prompt for p in m1.sample("train", 200, seed=4))


# ---------------------------------------------------------------- verifier: hand-written cases


def test_answer_outcomes(m1):
    p = listed(m1, BACK_RANK)
    assert (p.prompt, p.answer) == (f"mate in 1: {BACK_RANK}\n", "Ra8#")
    assert judge(m1, p, "Ra8#\nanswer: Ra8#\n") == (Outcome.CORRECT, "Ra8#", (True,), -1)
    for answer in ("Rb8#", "Rb8", "Rb8+", "b1b8", "Rbb8"):  # another key, in any spelling
        assert judge(m1, p, f"answer: {answer}") == (Outcome.CORRECT, "Rb8#", (), -1)
    assert judge(m1, p, "answer: a1a8") == (Outcome.CORRECT, "Ra8#", (), -1)
    assert judge(m1, p, "answer: Ra7\n") == (Outcome.WRONG, "Ra7", (), -1)  # legal, no mate
    assert judge(m1, p, "answer: g1h1\n") == (Outcome.WRONG, "Kh1", (), -1)
    assert judge(m1, p, "answer: Qa8#\n") == (Outcome.WRONG, "Qa8", (), -1)  # no queen: illegal
    assert judge(m1, p, "answer: R8\n")[0] is Outcome.MALFORMED  # not a move
    assert judge(m1, p, "answer: Rd8\n")[:2] == (Outcome.WRONG, "Rd8")  # ambiguous: two rooks
    uci_task = get_task("chess", mate_in=1, notation="uci")
    assert judge(uci_task, p, "answer: Rb8")[:2] == (Outcome.CORRECT, "b1b8")


def test_special_moves(m1):
    p = listed(m1, PROMOTION)
    assert m1.reference_steps(p) == ["c8=Q#"]
    for answer in ("c8=Q#", "c8Q", "c7c8q", "c8=R#", "c7c8r"):
        assert m1.verify(p, f"answer: {answer}\n").correct
    assert judge(m1, p, "answer: c8=N\n")[:2] == (Outcome.WRONG, "c8=N")  # legal, not mate
    assert judge(m1, p, "answer: c8\n")[:2] == (Outcome.WRONG, "c8")  # no promotion: illegal
    assert judge(m1, p, "answer: c7c8\n")[:2] == (Outcome.WRONG, "c7c8")
    p = listed(m1, CASTLING)
    assert m1.reference_steps(p) == ["O-O#"]
    for answer in ("O-O#", "O-O", "0-0", "e1g1", "e1h1"):
        assert m1.verify(p, f"answer: {answer}\n").correct
    assert judge(m1, p, "answer: O-O-O")[:2] == (Outcome.WRONG, "O-O-O")  # no right: illegal
    p = listed(m1, BLACK_TO_MOVE)
    assert (p.prompt, p.answer) == (f"mate in 1: {BLACK_TO_MOVE}\n", "Ra1#")
    assert m1.verify(p, "a8a1\nanswer: Ra1#").correct


def test_mate_in_two_keys(m1, m2):
    p = listed(m2, MATE_IN_2)
    assert (p.answer, m2.reference_steps(p)) == ("Rg7", ["Rg7", "Kh4", "Rh6#"])
    keys = naive_keys(chess.Board(MATE_IN_2), 2)
    assert len(keys) > 1
    for key in sorted(keys):
        assert m2.verify(p, f"answer: {key}\n").correct
    board = chess.Board(MATE_IN_2)
    for move in board.legal_moves:
        if move.uci() not in keys:
            assert judge(m2, p, f"answer: {move.uci()}")[0] is Outcome.WRONG
    # "mate in n" means within n moves: a shorter mate is right, a longer one is not
    back_rank = chess.Board(BACK_RANK)
    assert m2.verify(m2.problem_of(back_rank, solve(back_rank, 1)), "answer: Rb8#").correct
    two = m1.problem_of(board, solve(board, 2))
    assert judge(m1, two, "answer: Rg7")[:2] == (Outcome.WRONG, "Rg7")


def test_step_rules(m1, m2):
    p = listed(m2, MATE_IN_2)
    # any legal defence and any legal continuation is a valid step; the moves alternate sides
    assert judge(m2, p, "Rg7\nKh4\nQh2#\nanswer: Rg7")[2:] == ((True, True, True), -1)
    assert judge(m2, p, "Rg7\nKh4\nQe1\nanswer: Rg7")[2:] == ((True, True, True), -1)
    assert judge(m2, p, "Rg7\nRh6\nanswer: Rg7")[2:] == ((True, False), 1)  # white twice
    assert judge(m2, p, "Kh4\nanswer: Rg7")[2:] == ((False,), 0)  # black's move first
    assert judge(m2, p, "Rg7\nKh4\nRh6#\nKh5\nanswer: Rg7")[2:] == ((True,) * 3 + (False,), 3)
    # an invalid step does not move the position; junk lines are invalid steps
    assert judge(m2, p, "Rg9\nRg7\nmate soon\nKh4\nanswer: Rg7")[2:] == (
        (False, True, False, True),
        0,
    )
    # wrong answer, valid steps: the outcome judges the answer only
    assert judge(m2, p, "Rg7\nKh4\nRh6#\nanswer: Rh6\n")[0] is Outcome.WRONG
    assert judge(m2, p, "Rd1\nKh2\nanswer: Rg7\n")[0] is Outcome.CORRECT


def test_checks_and_backtracks(m1):
    p = listed(m1, BACK_RANK)
    v = m1.verify(p, "Ra7\ncheck: wrong\nRa8#\ncheck: ok\nanswer: Ra8#\n")
    assert (v.outcome, v.steps_valid, v.first_error, v.checks, v.backtracks) == (
        Outcome.CORRECT,
        (True, True),
        -1,
        2,
        1,
    )
    v = m1.verify(p, "Qa8\ncheck: wrong\ncheck: wrong\nRa8#\nanswer: Ra8#\n")
    assert (v.steps_valid, v.first_error, v.checks, v.backtracks) == ((False, True), -1, 2, 1)
    v = m1.verify(p, "Qa8\ncheck: ok\nRa8#\nanswer: Ra8#\n")  # an invalid step, not retracted
    assert (v.outcome, v.steps_valid, v.first_error) == (Outcome.CORRECT, (False, True), 0)
    # a retracted move does not move the position
    assert m1.verify(p, "Ra8#\ncheck: wrong\nKh7\n").steps_valid == (True, False)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Ra8#\n",
        "answer:",
        "answer: mate\n",
        "answer: Ra8# !\n",
        "answer: 0000",
        "answer: --",
        "answer: Ra8" + "#" * 100,
        "ANSWER: \u0661\n",
        "\ud800\x00\n",
    ],
)
def test_malformed(m1, text):
    v = m1.verify(listed(m1, BACK_RANK), text)
    assert v.outcome is Outcome.MALFORMED and v.answer is None


def test_fuzzed_outputs_never_raise(m1, m2):
    fragments = [
        "Ra8#",
        "Rb8",
        "a1a8",
        "b1b8",
        "c7c8q",
        "c8=Q#",
        "O-O",
        "0-0-0",
        "e1g1",
        "Kh7",
        "check: ok",
        "check: wrong",
        "answer: ",
        "answer: Ra8#",
        "Rg7",
        "Kh4",
        "Rh6#",
        "\n",
        "\n",
        "\n",
        " ",
        "x",
        "=",
        "+",
        "#",
        "-",
        "K" * 3000,
        "\u00e9",
        "\ud800",
        "\x00",
        "--",
        "0000",
        "Nxe5",
        "exd6",
        "h8=K",
    ]
    rng = random.Random(0)
    problems = [
        listed(m1, BACK_RANK),
        listed(m1, PROMOTION),
        listed(m1, CASTLING),
        listed(m2, MATE_IN_2),
    ]
    outcomes = set()
    for i in range(1500):
        task, p = (m2, problems[3]) if i % 4 == 3 else (m1, problems[i % 4])
        text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 12)))
        v = task.verify(p, text)
        assert v.steps_valid is not None and v.first_error >= -1 and v.backtracks <= v.checks
        outcomes.add(v.outcome)
    assert outcomes == {Outcome.CORRECT, Outcome.WRONG, Outcome.MALFORMED}
    assert m1.verify(problems[0], None).outcome is Outcome.MALFORMED  # type: ignore[arg-type]
    long_line = "Ra8# " * 200_000
    assert m1.verify(problems[0], f"{long_line}\nanswer: {long_line}").outcome is Outcome.MALFORMED


# ---------------------------------------------------------------- listed positions and knobs


def test_listed_positions(tmp_path):
    path = tmp_path / "fens.txt"
    path.write_text(
        f"# puzzles\n{BACK_RANK}\n\n{NO_MATE} 0 1\n{MATE_IN_2}\n{BLACK_TO_MOVE}\n{PROMOTION}\n"
    )
    task = get_task("chess", mate_in=1, positions=str(path))
    assert task.knobs["positions"] == str(path)
    fens = {p.meta["fen"] for p in task.sample("train", 3, seed=0, distinct=True)}
    assert fens == {BACK_RANK, BLACK_TO_MOVE, PROMOTION}  # no mate and the mate in 2: skipped
    task = get_task("chess", mate_in=2, positions=path, test_fraction=0.0)
    p = task.generate(random.Random(0))
    assert p.meta["fen"] == MATE_IN_2 and task.verify(p, "answer: Rg7\n").correct
    with pytest.raises(ReasonlabError, match="found only 1 distinct train"):
        task.sample("train", 2, seed=0)


def test_bad_positions_files(tmp_path):
    with pytest.raises(ConfigError, match="invalid knob positions=.*no such file"):
        get_task("chess", positions=str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{BACK_RANK}\nnot a fen\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: not a FEN"):
        get_task("chess", positions=str(bad))
    bad.write_text(f"{BACK_RANK}\n8/8/8/8/8/8/8/8 w - -\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: not a legal position"):
        get_task("chess", positions=str(bad))
    bad.write_text(f"{NO_MATE}\n")
    with pytest.raises(DataError, match="no position has a shortest forced mate in 1"):
        get_task("chess", positions=str(bad))
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(DataError, match="not UTF-8"):
        get_task("chess", positions=str(bad))


def test_knobs():
    task = get_task("chess")
    assert isinstance(task, ChessTask) and task.difficulty_knob == "mate_in"
    assert task.supports_answer_only
    assert task.knobs == {
        "mate_in": 1,
        "pieces": 3,
        "positions": None,
        "notation": "san",
        "test_fraction": 0.1,
    }
    with pytest.raises(ConfigError, match="'depth'.*mate_in, notation, pieces, positions"):
        get_task("chess", depth=2)


@pytest.mark.parametrize(
    "knob,value",
    [
        ("mate_in", 0),
        ("mate_in", 3),
        ("mate_in", "1"),
        ("mate_in", True),
        ("pieces", 0),
        ("pieces", 17),
        ("notation", "lan"),
        ("notation", None),
        ("positions", 5),
        ("test_fraction", 2),
    ],
)
def test_invalid_knob_values(knob, value):
    with pytest.raises(ConfigError, match=f"invalid knob {knob}=.*'chess'"):
        get_task("chess", **{knob: value})
