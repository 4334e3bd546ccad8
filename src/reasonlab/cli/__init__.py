"""The `reasonlab` command line: one module per command group, the shared options in common.py."""

from reasonlab.cli.app import app, main

__all__ = ["app", "main"]
