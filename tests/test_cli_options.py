"""CLI options that set a config field take their default and help from that field (one place)."""

from __future__ import annotations

import subprocess
import sys

import typer.main

from reasonlab.cli import app
from reasonlab.cli.common import FIELD_OPTIONS


def all_options() -> dict[str, list]:
    """Every command's options (typer's click objects), by command path ("eval", "judge eval", ...)."""
    out: dict[str, list] = {}

    def walk(cmd, path: str) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            out[path] = [p for p in cmd.params if type(p).__name__.endswith("Option")]

    walk(typer.main.get_command(app), "")
    return out


def test_field_options_have_no_default_of_their_own_and_show_the_fields():
    seen = 0
    for command, options in all_options().items():
        for opt in options:
            if "[default:" not in (opt.help or "").replace("\\[", "["):
                continue
            matches = []
            for flags, model, name in FIELD_OPTIONS:
                if flags[0].split("/")[0] not in opt.opts:
                    continue
                default = model.model_fields[name].get_default(call_default_factory=True)
                shown = flags[0].split("/")[not default] if isinstance(default, bool) else default
                matches.append(opt.help.replace("\\[", "[").endswith(f"[default: {shown}]"))
            assert any(matches), (command, opt.opts, opt.help)
            assert opt.default is None, (command, opt.opts)
            seen += 1
    assert seen >= 15  # eval, judge eval and sufficiency declare their sampling options this way


def test_no_option_repeats_a_config_default_by_hand():
    """An option named like a config field it sets must be a field option (default None)."""
    by_command = all_options()
    for command, flags in (
        (
            "eval",
            [
                "-n",
                "--problems",
                "--temperature",
                "--top-p",
                "--batch-size",
                "--seed",
                "--dtype",
                "--device",
                "--sampler",
            ],
        ),
        ("judge eval", ["--problems", "--best-of", "--seed"]),
        ("sufficiency", ["-n", "--problems", "--best-of", "--control-steps", "--seed"]),
    ):
        options = {o for opt in by_command[command] for o in opt.opts if opt.default is None}
        assert set(flags) <= options, (command, set(flags) - options)


def test_a_bad_value_names_the_flag_in_one_line(tmp_path):
    for args, flag in (
        (["eval", "--model", str(tmp_path), "--task", "arith", "-n", "0"], "-n"),
        (["eval", "--model", str(tmp_path), "--task", "arith", "--dtype", "float8"], "--dtype"),
        (
            ["sufficiency", "--model", str(tmp_path), "--task", "arith", "--problems", "0"],
            "--problems",
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-c", "from reasonlab.cli import main; main()", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert (
            proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {flag}:")
        ), proc.stderr
    assert not any(tmp_path.iterdir())
