"""Experiments built from the main job. sweep: many bases x the same RL recipe -> how the RL gain
depends on the sufficiency of the base (experiments/sweep.py; the sweep file in sweep_plan.py, the report in
reports/sweep.py, the compute-matched arm, RL's cost spent on more pretraining, in matched.py). Usage:

    from reasonlab.experiments import load_plan, run_sweep
    state = run_sweep(load_plan("configs/sweep.yaml", quick=True), Path("runs/sweep-quick"))
"""

from reasonlab.experiments.matched import MatchedConfig, rl_compute
from reasonlab.experiments.sweep import run_sweep
from reasonlab.experiments.sweep_plan import Cell, Plan, SweepConfig, load_plan
from reasonlab.reports.sweep import spearman, write_sweep_report

__all__ = [
    "Cell",
    "MatchedConfig",
    "Plan",
    "SweepConfig",
    "load_plan",
    "rl_compute",
    "run_sweep",
    "spearman",
    "write_sweep_report",
]
