"""`chess`: find the key move of a forced mate in 1 or 2; rules are trivial, winning is hard.

Format (prompt + completion; every line ends with "\\n"):

    mate in 2: 2K5/2R5/3R4/4Q3/8/7k/8/8 w - -   the prompt: the FEN without its move counters
    Rg7                 the principal variation, one move per step line: our key move,
    Kh4                 the defender's reply,
    Rh6#                our mating move (a mate in 1 has this one step only)
    answer: Rg7         the key move

Moves are SAN (`Qh7#`, `exd8=Q+`, `O-O`) or UCI (`d3h7`, `e7e8q`, `e1g1`), as the `notation` knob
says for the reference; the verifier reads either, in any line. Check and mate suffixes (`+`, `#`)
are allowed but not judged.

Problems: `mate_in` (1 or 2) is the length of the shortest forced mate, found by exhaustive search
in tasks/chess_search.py, which also draws the random positions. Generated positions hold both
kings and `pieces` more pieces: each white with probability 3/4 (black otherwise), its type uniform
over pawn, knight, bishop, rook, queen, its square uniform over the empty squares (pawns on ranks
2 to 7); the white king is uniform, the black king is on an edge square with probability 1/2
(uniform otherwise). White is to move, no castling or en passant.
Positions that python-chess judges invalid, and those whose shortest forced mate is not exactly
`mate_in` moves, are drawn again. With `positions` (a text file, one FEN per line, `#` comments)
problems are drawn uniformly from its rows instead; either side may be to move, and rows whose
shortest forced mate is not `mate_in` moves are skipped. The reference key is the first forcing
move in UCI order; the defender's reply is the one with the fewest mating answers (then UCI order);
the mating move is the first in UCI order. Knobs: `mate_in`, `pieces` (1..16, ignored with
`positions`), `positions`, `notation` ("san" or "uci"), `test_fraction`. Difficulty is `mate_in`.

Verifier (line grammar as in tasks/parsing.py: step lines, `check: ok` / `check: wrong` after a
step, `check: wrong` retracting it, the first `answer:` line ending the solution). A step line is
valid iff it is one legal move in the position reached by the non-retracted valid steps before it
(so the moves alternate sides); a junk or illegal line is invalid and does not move the position;
a move after mate is illegal. The outcome judges the answer only: MALFORMED without an answer line
or when the answer is not a move in SAN or UCI syntax; WRONG when it is such a move but illegal
(or ambiguous) in the position, or legal but not forcing mate within `mate_in` moves; CORRECT iff
it is legal and forces mate within `mate_in` moves against every defence (any such key, not only
the reference). Verdict.answer is the legal answer move rewritten in the task's notation.

Departures from Lichess puzzle conventions: positions are random rather than from games; the FEN
is the position with the solver to move (a Lichess puzzle FEN is one move earlier, and its first
solution move is the opponent's); every forcing key is accepted (puzzles demand a unique
solution); the defender's moves are not judged; the prompt names the length of the mate.

Usage:
    task = get_task("chess", mate_in=2)  # registered on `import reasonlab.tasks.chess`
    problem = task.generate(random.Random(0))
    task.verify(problem, "\\n".join(task.reference_steps(problem)) + "\\nanswer: " + problem.answer)
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chess

from reasonlab.errors import ConfigError, DataError, ReasonlabError
from reasonlab.tasks.base import Task, int_knob, register_task, short_repr
from reasonlab.tasks.chess_search import forces_mate, random_board, solve
from reasonlab.tasks.parsing import Solution, StepLine, make_verdict, split_lines
from reasonlab.types import Outcome, Problem, Verdict

NOTATIONS: tuple[str, ...] = ("san", "uci")
MAX_DRAWS = 200_000  # random positions tried by generate() before it gives up
MAX_MOVE_CHARS = 12  # longer tokens are never read as moves

_UCI = re.compile(r"[a-h][1-8][a-h][1-8][nbrq]?", re.ASCII)
_SAN = re.compile(
    r"(?:[NBRQK]?[a-h]?[1-8]?[-x]?[a-h][1-8](?:=?[NBRQnbrq])?|O-O(?:-O)?|0-0(?:-0)?)[+#]?", re.ASCII
)


# ---------------------------------------------------------------------------------------------
# Reading moves and solutions


def read_move(board: chess.Board, token: str) -> tuple[bool, chess.Move | None]:
    """(is the token a move in SAN or UCI syntax, the legal move it names in `board` or None)."""
    if len(token) > MAX_MOVE_CHARS:
        return False, None
    try:
        if _UCI.fullmatch(token):
            move = board.parse_uci(token)
        elif _SAN.fullmatch(token):
            move = board.parse_san(token)
        else:
            return False, None
    except ValueError:  # illegal or ambiguous in this position
        return True, None
    return True, (move if move and board.is_legal(move) else None)


def write_move(board: chess.Board, move: chess.Move, notation: str) -> str:
    """`move` (legal in `board`) in SAN, with its check suffix, or in UCI."""
    return board.san(move) if notation == "san" else move.uci()


def write_line(board: chess.Board, moves: Sequence[chess.Move], notation: str) -> list[str]:
    """The moves of a line played from `board` (left unchanged), each in `notation`."""
    board = board.copy(stack=False)
    out = []
    for move in moves:
        out.append(write_move(board, move, notation))
        board.push(move)
    return out


# ---------------------------------------------------------------------------------------------
# Positions


def short_fen(board: chess.Board) -> str:
    """The FEN without the halfmove clock and move number."""
    return board.fen().rsplit(" ", 2)[0]


def load_positions(path: str, mate_in: int) -> list[tuple[str, tuple[chess.Move, ...]]]:
    """(FEN, reference line) for each row of `path` with a shortest forced mate of `mate_in`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"invalid knob positions={short_repr(path)} for task 'chess': no such file"
        ) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the positions file ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            board = chess.Board(line)
        except ValueError:
            raise DataError(f"{path}:{number}: not a FEN: {short_repr(line)}") from None
        if not board.is_valid():
            raise DataError(f"{path}:{number}: not a legal position: {short_repr(line)}")
        line_moves = solve(board, mate_in)
        if line_moves is not None:
            rows.append((short_fen(board), line_moves))
    if not rows:
        raise DataError(f"{path}: no position has a shortest forced mate in {mate_in}")
    return rows


# ---------------------------------------------------------------------------------------------
# The task


@register_task("chess")
class ChessTask(Task):
    """Name the key move of a forced mate in `mate_in`."""

    difficulty_knob = "mate_in"  # the knob that sets Problem.difficulty

    def __init__(
        self,
        *,
        mate_in: int = 1,
        pieces: int = 3,
        positions: str | None = None,
        notation: str = "san",
        test_fraction: float = 0.1,
    ) -> None:
        super().__init__(test_fraction=test_fraction)
        self.mate_in = int_knob(self.name, "mate_in", mate_in, 1, 2)
        self.pieces = int_knob(self.name, "pieces", pieces, 1, 16)
        if notation not in NOTATIONS:
            raise ConfigError(
                f"invalid knob notation={short_repr(notation)} for task 'chess': "
                "must be 'san' or 'uci'"
            )
        self.notation = notation
        if positions is not None and not isinstance(positions, (str, os.PathLike)):
            raise ConfigError(
                f"invalid knob positions={short_repr(positions)} for task 'chess': "
                "must be the path of a text file of FENs, or null"
            )
        self.positions = None if positions is None else os.fspath(positions)
        self.rows = None if positions is None else load_positions(self.positions, self.mate_in)
        self.knobs: dict[str, Any] = {
            "mate_in": self.mate_in,
            "pieces": self.pieces,
            "positions": self.positions,
            "notation": self.notation,
            "test_fraction": self.test_fraction,
        }

    def generate(self, rng: random.Random) -> Problem:
        if self.rows is not None:
            fen, line = self.rows[rng.randrange(len(self.rows))]
            return self.problem_of(chess.Board(fen), line)
        for _ in range(MAX_DRAWS):
            board = random_board(rng, self.pieces)
            if board.is_valid():
                line = solve(board, self.mate_in)
                if line is not None:
                    return self.problem_of(board, line)
        raise ReasonlabError(
            f"task 'chess' found no mate in {self.mate_in} in {MAX_DRAWS} random "
            f"positions with knobs {self.knobs}; raise pieces"
        )

    def problem_of(self, board: chess.Board, line: Sequence[chess.Move]) -> Problem:
        fen = short_fen(board)
        pv = {notation: tuple(write_line(board, line, notation)) for notation in NOTATIONS}
        meta = {"fen": fen, "mate_in": self.mate_in, "pv_uci": pv["uci"], "pv_san": pv["san"]}
        prompt = f"mate in {self.mate_in}: {fen}\n"
        return self.make_problem(prompt, pv[self.notation][0], self.mate_in, meta)

    def verify(self, problem: Problem, text: str) -> Verdict:
        lines, retracted, checks, answer_text = split_lines(text)
        answer_text = None if answer_text is None else answer_text.strip()
        start = chess.Board(problem.meta["fen"])
        board = start.copy(stack=False)
        valid = []
        for line, undone in zip(lines, retracted):
            move = read_move(board, line)[1]
            valid.append(move is not None)
            if move is not None and not undone:
                board.push(move)
        outcome, answer = Outcome.MALFORMED, None
        if answer_text is not None:
            syntax, move = read_move(start, answer_text)
            if move is not None:
                answer = write_move(start, move, self.notation)
                forced = forces_mate(start, move, problem.meta["mate_in"])
                outcome = Outcome.CORRECT if forced else Outcome.WRONG
            elif syntax:
                outcome, answer = Outcome.WRONG, answer_text.rstrip("+#")
        steps = tuple(StepLine(None, undone) for undone in retracted)
        return make_verdict(Solution(steps, checks, answer), valid, outcome)

    def reference_steps(self, problem: Problem) -> list[str]:
        return list(problem.meta[f"pv_{self.notation}"])

    def wrong_step(self, problem: Problem, index: int, rng: random.Random) -> str:
        """An illegal move like the reference one: the same piece to a square near its destination
        that it cannot reach, or (half the time, where there is one) a move to its destination
        that no piece can make (SAN: another piece letter; UCI: another origin square)."""
        board = chess.Board(problem.meta["fen"])
        line = [chess.Move.from_uci(m) for m in problem.meta["pv_uci"]]
        for move in line[:index]:
            board.push(move)
        move = line[index]
        free = [
            to
            for to in chess.SQUARES  # no move onto a king or its own square
            if to != move.from_square and not board.kings & chess.BB_SQUARES[to]
        ]
        near = [
            self.move_text(board, move.from_square, to)
            for to in free
            if chess.square_distance(to, move.to_square) <= 2
        ]
        if self.notation == "uci":
            other = [
                chess.square_name(s) + chess.square_name(move.to_square)
                for s in chess.SQUARES
                if s not in (move.from_square, move.to_square)
                and chess.square_distance(s, move.from_square) <= 2
            ]
        else:
            capture = "x" if board.color_at(move.to_square) == (not board.turn) else ""
            other = [
                chess.piece_symbol(kind).upper() + capture + chess.square_name(move.to_square)
                for kind in (chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING)
            ]
        anywhere = [self.move_text(board, move.from_square, to) for to in free]
        pools = [other, near] if rng.random() < 0.5 else [near, other]
        for pool in [*pools, anywhere]:
            options = [t for t in pool if read_move(board, t) == (True, None)]
            if options:
                return rng.choice(options)
        raise ReasonlabError(f"task 'chess' found no illegal version of step {index}")

    def move_text(self, board: chess.Board, origin: int, to: int) -> str:
        """The piece on `origin` moved to `to` in the task's notation, legal or not."""
        if self.notation == "uci":
            return chess.square_name(origin) + chess.square_name(to)
        kind = board.piece_type_at(origin)
        capture = "x" if board.color_at(to) == (not board.turn) else ""
        if kind == chess.PAWN and chess.square_file(origin) == chess.square_file(to):
            return chess.square_name(to)
        if kind == chess.PAWN:
            return chess.FILE_NAMES[chess.square_file(origin)] + "x" + chess.square_name(to)
        return chess.piece_symbol(kind or chess.KING).upper() + capture + chess.square_name(to)
