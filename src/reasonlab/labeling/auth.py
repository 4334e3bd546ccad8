"""Tokens, roles and CSRF tokens of the labeling app.

An annotator's token is `secrets.token_urlsafe(32)` (256 random bits), shown once when the annotator
is added; the database keeps only its sha256, so a copy of the database does not let anyone log in.
Tokens are compared in constant time (`hmac.compare_digest`). A form carries a CSRF token, the
HMAC-SHA256 of the annotator's token hash under the database's secret (meta 'secret'): a page
from another site cannot know it, so it cannot post a form in the annotator's name.

Usage:
    token = new_token(); stored = hash_token(token)
    verify_token(token, stored)                          # -> True
    field = csrf_token(secret, stored); check_csrf(secret, stored, field)   # -> True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ROLES: tuple[str, ...] = ("annotator", "admin")
SESSION_COOKIE = "reasonlab_session"


def new_token() -> str:
    """A fresh annotator token (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def new_secret() -> str:
    """A fresh CSRF secret (64 hex digits)."""
    return secrets.token_hex(32)


def hash_token(token: str) -> str:
    """The sha256 hex digest of a token: what the database stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify_token(token: str, token_hash: str) -> bool:
    """Does `token` hash to `token_hash`? (constant-time comparison)"""
    return hmac.compare_digest(hash_token(token), token_hash)


def has_role(role: str, needed: str) -> bool:
    """An admin may do everything an annotator may; an annotator only that."""
    if needed not in ROLES:
        raise ValueError(f"unknown role {needed!r} (known: {', '.join(ROLES)})")
    return role == "admin" or role == needed


def csrf_token(secret: str, token_hash: str) -> str:
    """The CSRF field of the forms of the annotator whose token hashes to `token_hash`."""
    return hmac.new(secret.encode("utf-8"), token_hash.encode("utf-8"), hashlib.sha256).hexdigest()


def check_csrf(secret: str, token_hash: str, given: str | None) -> bool:
    """Is `given` the CSRF token of this annotator? (constant-time comparison)"""
    if not given:
        return False
    return hmac.compare_digest(csrf_token(secret, token_hash), given)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None (missing or not Bearer)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
