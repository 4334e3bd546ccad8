"""`reasonlab label ...`: human labeling of solutions, step by step or in pairs (labeling/).

Usage:

    reasonlab label add-annotator alice --db labels.sqlite            # prints alice's token once
    reasonlab label add-annotator boss --admin --db labels.sqlite
    reasonlab label import eval.jsonl --db labels.sqlite --gold-rate 0.1 --overlap 0.2 --k 3 --judges runs/default
    reasonlab label import prefs.jsonl --pairs --db labels.sqlite
    reasonlab label serve --db labels.sqlite --port 8765               # http://127.0.0.1:8765/login
    reasonlab label export --db labels.sqlite --format stepwise --out human.jsonl
    reasonlab judge train --base runs/default --data human.jsonl        # train a judge on them
    reasonlab label agreement --db labels.sqlite --out runs/agreement
    reasonlab label simulate --url http://127.0.0.1:8765 --db labels.sqlite --annotators 5 --seconds 60
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from reasonlab.cli.common import console, load_any_judge, print_summary, resolve_model
from reasonlab.errors import ReasonlabError

if TYPE_CHECKING:
    from reasonlab.labeling.importer import ScoreFn

label_app = typer.Typer(
    no_args_is_help=True,
    help="Human labeling: a web app for rating solutions step by step (or in pairs), "
    "exports the judges train on, agreement reports, simulated annotators.",
)

DB_HELP = "The labeling database (one SQLite file, created on first use)."
JUDGES_HELP = (
    "Score the items with these judges (repeatable): a run folder (its judges/prm, judges/orm and "
    "its base model's likelihood), a judge folder, or a baseline (always-correct, symbolic-arithmetic)."
)


def existing_db(db: Path) -> Path:
    if not db.is_file():
        raise ReasonlabError(f"--db: no such labeling database {db}")
    return db


@label_app.command("serve")
def label_serve(
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
) -> None:
    """Serve the labeling app (pages for annotators, a JSON API, the admin page)."""
    try:
        from reasonlab.labeling.server import serve
    except ImportError as err:  # fastapi, uvicorn, jinja2, python-multipart: the label extra
        raise ReasonlabError(
            f"label serve: {err.name or err} is not installed (pip install 'reasonlab[label]')"
        ) from None

    console.print(f"labeling {db} at http://{host}:{port}/login  (Ctrl-C stops it)")
    serve(db, host, port)


@label_app.command("add-annotator")
def label_add_annotator(
    name: str = typer.Argument(..., help="The annotator's name (unique)."),
    admin: bool = typer.Option(
        False, "--admin", help="An admin: sees the queue, exports, reports."
    ),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
) -> None:
    """Add an annotator and print their token (shown once: only its hash is stored)."""
    from reasonlab.labeling.store import Store

    with Store(db) as store:
        token = store.add_annotator(name, admin)
    role = "admin" if admin else "annotator"
    print(f"added {role} {name!r} to {db}; their token, shown only this once:")
    print(token)


@label_app.command("import")
def label_import(
    files: list[Path] = typer.Argument(
        ..., help="Step-labelled files, or preference files with --pairs."
    ),
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    pairs: bool = typer.Option(
        False, "--pairs", help="The files are TRL preference JSONL (prompt, chosen, rejected)."
    ),
    gold_rate: float = typer.Option(
        0.0, "--gold-rate", help="Share of items with known labels used as gold (screening) items."
    ),
    overlap: float = typer.Option(
        0.0, "--overlap", help="Share of items labelled by --k annotators instead of one."
    ),
    k: int = typer.Option(3, "--k", help="Annotators per overlapping item."),
    judges: list[str] = typer.Option([], "--judges", help=JUDGES_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of the gold, overlap and pair-side draws."),
    weight: list[str] = typer.Option(
        [],
        "--weight",
        help="A queue weight, name=value (repeatable): convincing_wrong (default 1.0), "
        "disagreement (0.5), uncertainty (0.25); see labeling/queue.py.",
    ),
) -> None:
    """Add items to the labeling queue (a key already there is skipped), ordered by priority."""
    from reasonlab.labeling.importer import import_files
    from reasonlab.labeling.queue import Weights
    from reasonlab.labeling.store import Store

    weights = queue_weights(weight, Weights)
    score = judge_scorer(judges) if judges else None
    with Store(db) as store:
        added, read = import_files(
            store,
            files,
            pairs=pairs,
            gold_rate=gold_rate,
            overlap=overlap,
            k=k,
            seed=seed,
            score=score,
            weights=weights,
        )
    console.print(
        f"imported {added} new items of {read} read ({read - added} already there) into {db}"
    )


def queue_weights(items: list[str], weights_type: type) -> Any:
    """`--weight name=value` options -> the queue's Weights; ReasonlabError naming a bad one."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(weights_type)}
    given: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in known:
            raise ReasonlabError(
                f"--weight: {item!r} is not name=value with name in {', '.join(sorted(known))}"
            )
        try:
            given[name] = float(value)
        except ValueError:
            raise ReasonlabError(f"--weight: {name}={value!r} is not a number") from None
    return weights_type(**given)


@label_app.command("export")
def label_export(
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    format: str = typer.Option(
        ...,
        "--format",
        help="stepwise (TRL stepwise JSONL, from step labels) or preference (from pairs).",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="The JSONL file to write (replaced if there)."
    ),
) -> None:
    """Export the labels as training data (`reasonlab judge train --data FILE` reads stepwise)."""
    from reasonlab.labeling.export import export_file
    from reasonlab.labeling.store import Store

    with Store(existing_db(db)) as store:
        n = export_file(store, format, out)
    console.print(f"wrote {n} {format} records to {out}")


@label_app.command("agreement")
def label_agreement(
    db: Path = typer.Option(..., "--db", help=DB_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for agreement.json / .html / .md."),
    judges: list[str] = typer.Option(
        [], "--judges", help=JUDGES_HELP + " Their scores are stored with the items first."
    ),
) -> None:
    """Agreement between annotators, and between the judges and the annotators."""
    from reasonlab.labeling.store import Store

    existing_db(db)
    if judges:
        from reasonlab.labeling.importer import judge_scores

        score = judge_scorer(judges)
        with Store(db) as store:
            items = store.items()
            scored = judge_scores(items, score)
            store.set_scores({item.id: s for item, s in zip(items, scored)})
        console.print(f"scored {len(items)} items with {', '.join(judges)}")
    from reasonlab.labeling.report import write_agreement_report

    path = write_agreement_report(db, out)
    console.print(f"agreement report: {path}")


@label_app.command("simulate")
def label_simulate(
    url: str = typer.Option("http://127.0.0.1:8765", "--url", help="The running labeling app."),
    db: Optional[Path] = typer.Option(
        None,
        "--db",
        help="The app's database (to add the simulated annotators and read the truth).",
    ),
    annotators: int = typer.Option(5, "--annotators", help="Simulated annotators (threads)."),
    token: list[str] = typer.Option(
        [], "--token", help="Use these annotators' tokens instead of adding new ones (repeatable)."
    ),
    noise: float = typer.Option(0.1, "--noise", help="Chance of a label drawn at random."),
    bias: float = typer.Option(0.0, "--bias", help="Chance of calling a solution all correct."),
    speed: float = typer.Option(0.0, "--speed", help="Seconds spent per step read."),
    seconds: float = typer.Option(60.0, "--seconds", help="How long to run."),
    max_labels: Optional[int] = typer.Option(
        None, "--max-labels", help="Stop after this many labels."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the annotators' errors."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Also write the result as JSON here."
    ),
) -> None:
    """Label through the real HTTP API with simulated annotators (load test, agreement check)."""
    from reasonlab.labeling.simulate import simulate, truth_by_item

    if db is None:
        raise ReasonlabError("--db: the simulated annotators read the items' truth from it")
    tokens = list(token)
    if not tokens:
        if annotators < 1:
            raise ReasonlabError(f"--annotators: {annotators}, expected at least 1")
        tokens = add_simulated(existing_db(db), annotators)
    try:
        result = simulate(
            url,
            tokens,
            truth_by_item(existing_db(db)),
            noise=noise,
            bias=bias,
            speed=speed,
            seconds=seconds,
            max_labels=max_labels,
            seed=seed,
        )
    except ValueError as err:
        raise ReasonlabError(f"simulate: {err}") from None
    if out is not None:
        from reasonlab.fileio import write_text_atomic

        write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    print_summary({k: v for k, v in result.items() if not isinstance(v, (list, dict))})


def add_simulated(db: Path, n: int) -> list[str]:
    """Add `n` annotators named sim-0, sim-1, ... (the next free numbers); their tokens."""
    from reasonlab.labeling.store import Store

    with Store(db) as store:
        taken = {a.name for a in store.annotators()}
        names: list[str] = []
        i = 0
        while len(names) < n:
            if f"sim-{i}" not in taken:
                names.append(f"sim-{i}")
            i += 1
        return [store.add_annotator(name) for name in names]


def judge_scorer(specs: Sequence[str]) -> ScoreFn:
    """A `score(prompts, steps_lists)` function over the judges named by --judges."""
    from reasonlab.types import StepRecord

    judges: dict[str, Any] = {}

    def add(name: str, judge: Any, spec: str) -> None:
        judges[f"{Path(spec).name}:{name}" if name in judges else name] = judge

    for spec in specs:
        path = Path(spec)
        if (path / "config.yaml").is_file():  # a run folder: its trained judges and its base
            from reasonlab.judges.likelihood import LikelihoodJudge
            from reasonlab.judges.models import HEADS
            from reasonlab.models import load_policy

            found = 0
            for head in HEADS:
                if head != "pairwise" and (path / "judges" / head / "config.json").is_file():
                    judge, _, _ = load_any_judge(head, path)
                    add(head, judge, spec)
                    found += 1
            base_dir, run_cfg = resolve_model(path, prefer="base")
            if (base_dir / "config.json").is_file() and base_dir != path:
                options = run_cfg.model_options() if run_cfg is not None else None
                add("likelihood", LikelihoodJudge(load_policy(base_dir, options=options)), spec)
                found += 1
            if not found:
                raise ReasonlabError(f"--judges: {spec} holds no trained judge and no base model")
            continue
        try:
            judge, _, _ = load_any_judge(spec)
        except ReasonlabError as err:
            raise ReasonlabError(str(err).replace("--judge:", "--judges:", 1)) from None
        if judge is None:
            raise ReasonlabError(
                "--judges: the verifier needs a task; give a run folder, a judge folder or a baseline"
            )
        add(getattr(judge, "name", path.name), judge, spec)

    def score(prompts: list[str], steps: list[list[str]]) -> dict[str, list[list[float]]]:
        records = [StepRecord(p, tuple(s)) for p, s in zip(prompts, steps)]
        console.print(f"scoring {len(records)} solutions with {', '.join(judges)}")
        return {name: [list(js.steps) for js in j.score(records)] for name, j in judges.items()}

    return score
