"""Experiments built from the main job. sweep: many bases x the same RL recipe -> how the RL gain
depends on the sufficiency of the base (experiments/sweep.py, its report in sweep_report.py). Usage:

    from reasonlab.experiments import load_plan, run_sweep
    state = run_sweep(load_plan("configs/sweep.yaml", quick=True), Path("runs/sweep-quick"))
"""

from reasonlab.experiments.sweep import Cell, Plan, SweepConfig, load_plan, run_sweep
from reasonlab.experiments.sweep_report import spearman, write_sweep_report

__all__ = ["Cell", "Plan", "SweepConfig", "load_plan", "run_sweep", "spearman", "write_sweep_report"]
