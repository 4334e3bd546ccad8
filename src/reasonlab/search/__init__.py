"""Test-time search: spend compute at inference with a judge (see search/base.py)."""
