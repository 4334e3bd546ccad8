"""The `reasonlab` command line (typer + rich): run, pretrain, rl, eval, judge train, judge eval, sufficiency,
search, sweep, report, compare, label (human labeling: serve, add-annotator, import, export, agreement,
simulate).

Bad input (unknown task or knob, malformed YAML, unknown --set key, missing or corrupt checkpoint, an
output folder holding another run) prints one line naming the field or file and exits with code 2.
Usage:

    reasonlab run                                  # the CPU demo: configs/default.yaml -> runs/default
    reasonlab rl --base runs/default --out runs/rloo --set rl.advantage=rloo
    reasonlab eval --model runs/default -n 64
    reasonlab eval --model models/Qwen2.5-Math-1.5B --task aime24 -n 16
    reasonlab judge train --base runs/default --head prm --set judge.labels=montecarlo
    reasonlab judge eval --judge symbolic-arithmetic --data processbench:gsm8k
    reasonlab sufficiency --model runs/default
    reasonlab search --model runs/default --judge prm --budgets 1,4,16
    reasonlab sweep --config configs/sweep.yaml --quick
    reasonlab compare runs/default runs/rloo
    reasonlab label serve --db labels.sqlite
"""

from __future__ import annotations

import sys

import typer

from reasonlab.cli.compare import compare
from reasonlab.cli.eval import eval_
from reasonlab.cli.jobs import pretrain, rl, run
from reasonlab.cli.judge import judge_app
from reasonlab.cli.label import label_app
from reasonlab.cli.report import report
from reasonlab.cli.search import search
from reasonlab.cli.sufficiency import sufficiency
from reasonlab.cli.sweep import sweep
from reasonlab.errors import ReasonlabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="reasonlab: build o1-style reasoning models and measure what makes them work.",
)
app.command()(run)
app.command()(pretrain)
app.command()(rl)
app.command("eval")(eval_)
app.add_typer(judge_app, name="judge")
app.add_typer(label_app, name="label")
app.command()(sufficiency)
app.command()(search)
app.command()(sweep)
app.command()(report)
app.command()(compare)


def main() -> None:
    """Entry point: one line and exit code 2 for bad input, never a traceback."""
    try:
        app(standalone_mode=False)
    except ReasonlabError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except typer.TyperException as err:  # usage errors: unknown option, missing or malformed value
        print(f"error: {err.format_message()}", file=sys.stderr)
        sys.exit(err.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except (
        FloatingPointError
    ) as err:  # divergence: the message says which step and which checkpoint is kept
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
