"""Forced-mate search and random positions for the `chess` task (tasks/chess.py).

`solve(board, mate_in)` decides whether the side to move has a shortest forced mate of exactly
`mate_in` moves (1 or 2) and returns the task's reference line; `forces_mate(board, move, n)` is
the verifier's test of a key move; `random_board(rng, pieces)` draws the generator's positions
(the distribution is specified in the docstring of tasks/chess.py).

Departures from a plain minimax search: it is a depth-limited AND/OR proof search that answers
yes or no (does a forced mate exist), with no evaluation function, scores, alpha-beta window or
transposition table. The attacker's last move is drawn only from the moves that give check
(`checking_moves`, a bitboard test that plays only promotions, en passant, king moves while
castling rights remain and moves of pieces that shield the king from one of our sliders), since a
mate must check. Each attacker
node keeps one killer: the defender's reply that refuted the previous candidate is tried first
against the next. A position with no legal reply that is not mate is stalemate, never a win.
The reference line is deterministic: the first forcing key in UCI order, the defender's reply
with the fewest mating answers (then UCI order), the first mating move in UCI order.

Usage (tests: pytest -q tests/test_tasks_chess.py):
    from reasonlab.tasks.chess_search import solve
    solve(chess.Board("6k1/5ppp/8/8/8/8/8/RR4K1 w - - 0 1"), 1)  # (Move.from_uci('a1a8'),)
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import chess

WHITE_SHARE = 0.75  # probability that an extra piece of a generated position is white
EDGE_KING = 0.5  # probability that the black king of a generated position stands on the edge
PIECE_TYPES = (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN)
EDGE_SQUARES = tuple(
    s for s in chess.SQUARES if chess.square_file(s) in (0, 7) or chess.square_rank(s) in (0, 7)
)


# ---------------------------------------------------------------------------------------------
# Mate search


def checking_moves(board: chess.Board) -> Iterator[chess.Move]:
    """The legal moves of the side to move that give check (the set that board.gives_check keeps).

    Without playing most moves: a direct check is a move to a square from which the moved piece
    attacks the enemy king; moves of a piece that alone shields the king from one of our sliders,
    promotions, en passant and castling are played to decide.
    """
    us = board.turn
    king = board.king(not us)
    if king is None:
        return
    occupied, ours = board.occupied, board.occupied_co[us]
    straight = (
        chess.BB_RANK_ATTACKS[king][chess.BB_RANK_MASKS[king] & occupied]
        | chess.BB_FILE_ATTACKS[king][chess.BB_FILE_MASKS[king] & occupied]
    )
    diagonal = chess.BB_DIAG_ATTACKS[king][chess.BB_DIAG_MASKS[king] & occupied]
    snipers = (
        (chess.BB_RANK_ATTACKS[king][0] | chess.BB_FILE_ATTACKS[king][0])
        & (board.rooks | board.queens)
        | chess.BB_DIAG_ATTACKS[king][0] & (board.bishops | board.queens)
    ) & ours
    shields = 0  # our pieces that alone stand between one of our sliders and the king
    for sniper in chess.scan_reversed(snipers):
        between = chess.between(king, sniper) & occupied
        if between and between & (between - 1) == 0:
            shields |= between & ours
    ep = chess.BB_SQUARES[board.ep_square] if board.ep_square is not None else 0
    promoting = board.pawns & ours & (chess.BB_RANK_7 if us == chess.WHITE else chess.BB_RANK_2)
    pawn_checks = chess.BB_PAWN_ATTACKS[not us][king] & ~ep
    direct = (
        (board.knights, chess.BB_KNIGHT_ATTACKS[king]),
        (board.bishops, diagonal),
        (board.rooks, straight),
        (board.queens, straight | diagonal),
        (board.pawns & ~promoting, pawn_checks),
    )
    for pieces, targets in direct:
        if pieces & ours & ~shields and targets:
            yield from board.generate_legal_moves(pieces & ours & ~shields, targets)
    played = shields | promoting
    if board.castling_rights:
        played |= board.kings & ours
    if ep:
        yield from (
            m
            for m in board.generate_legal_moves(board.pawns & ours & ~played, ep)
            if board.gives_check(m)
        )
    if played:
        yield from (m for m in board.generate_legal_moves(played) if board.gives_check(m))


def mating_moves(board: chess.Board) -> Iterator[chess.Move]:
    """The legal moves that checkmate at once."""
    for move in checking_moves(board):
        board.push(move)
        mate = board.is_checkmate()
        board.pop()
        if mate:
            yield move


def has_mate_in_one(board: chess.Board) -> bool:
    return next(mating_moves(board), None) is not None


def forces_mate(board: chess.Board, move: chess.Move, n: int, killer: list | None = None) -> bool:
    """Does the legal `move` force mate within `n` moves of its side (this one counted)?

    `killer` (a one-element list) remembers the last refutation, which is tried first next time.
    """
    board.push(move)
    try:
        if board.is_checkmate():
            return True
        if n <= 1:
            return False
        first = killer[0] if killer is not None else None
        first = first if first is not None and board.is_legal(first) else None
        if first is not None and not still_mates(board, first, n - 1):
            return False
        any_reply = first is not None
        for reply in board.generate_legal_moves():
            if reply == first:
                continue
            any_reply = True
            if not still_mates(board, reply, n - 1):
                if killer is not None:
                    killer[0] = reply
                return False
        return any_reply  # no reply at all: stalemate
    finally:
        board.pop()


def still_mates(board: chess.Board, reply: chess.Move, n: int) -> bool:
    """After the defender's legal `reply`, can the attacker still force mate within `n` moves?"""
    board.push(reply)
    try:
        return mates_within(board, n)
    finally:
        board.pop()


def mates_within(board: chess.Board, n: int) -> bool:
    """Can the side to move force mate within `n` of its moves?"""
    if n <= 1:
        return has_mate_in_one(board)
    killer: list = [None]
    return any(forces_mate(board, move, n, killer) for move in board.generate_legal_moves())


def by_uci(moves: Iterator[chess.Move]) -> list[chess.Move]:
    return sorted(moves, key=chess.Move.uci)


def solve(board: chess.Board, mate_in: int) -> tuple[chess.Move, ...] | None:
    """The reference line of a shortest forced mate of exactly `mate_in` moves, or None.

    None when the shortest forced mate is shorter or longer than `mate_in` (or there is none).
    """
    if mate_in == 1:
        mates = by_uci(mating_moves(board))
        return (mates[0],) if mates else None
    if has_mate_in_one(board):
        return None
    killer: list = [None]
    key = next(
        (m for m in by_uci(board.generate_legal_moves()) if forces_mate(board, m, mate_in, killer)),
        None,
    )
    if key is None:
        return None
    board.push(key)
    try:
        best: tuple[int, str, list[chess.Move]] | None = None
        for reply in board.generate_legal_moves():  # mate_in == 2: every reply allows a mate
            board.push(reply)
            mates = by_uci(mating_moves(board))
            board.pop()
            rank = (len(mates), reply.uci(), [reply, mates[0]])
            if best is None or rank[:2] < best[:2]:
                best = rank
        return (key, *best[2]) if best is not None else None
    finally:
        board.pop()


# ---------------------------------------------------------------------------------------------
# Positions


def random_board(rng: random.Random, pieces: int) -> chess.Board:
    """Both kings and `pieces` more pieces at random, white to move (as tasks/chess.py says)."""
    board = chess.Board(None)
    board.set_piece_at(rng.randrange(64), chess.Piece(chess.KING, chess.WHITE))
    king = rng.choice(EDGE_SQUARES) if rng.random() < EDGE_KING else rng.randrange(64)
    while board.occupied & chess.BB_SQUARES[king]:
        king = rng.randrange(64)
    board.set_piece_at(king, chess.Piece(chess.KING, chess.BLACK))
    for _ in range(pieces):
        color = rng.random() < WHITE_SHARE
        kind = rng.choice(PIECE_TYPES)
        lo, hi = (8, 56) if kind == chess.PAWN else (0, 64)
        square = rng.randrange(lo, hi)
        while board.occupied & chess.BB_SQUARES[square]:
            square = rng.randrange(lo, hi)
        board.set_piece_at(square, chess.Piece(kind, color))
    return board
