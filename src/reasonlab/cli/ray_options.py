"""The `--ray` and `--ray-cpus` options of the commands that can run their independent jobs on Ray (sweep,
sufficiency): `--ray local` starts a Ray inside the command (on `--ray-cpus` CPUs, default every CPU of
the machine), `--ray auto` / `--ray HOST:PORT` / `--ray ray://HOST:PORT` join a running cluster, and
without the flag RAY_ADDRESS is joined when it is set (distributed/cluster.py). Usage:

    def command(ray: Optional[str] = RayOpt, ray_cpus: Optional[int] = RayCpusOpt): ...
"""

from __future__ import annotations

import typer

RayOpt = typer.Option(
    None,
    "--ray",
    help="Run the independent jobs as Ray tasks: local (a Ray started here), auto, HOST:PORT or "
    "ray://HOST:PORT (join a cluster; default: $RAY_ADDRESS when set, else no Ray).",
)
RayCpusOpt = typer.Option(
    None, "--ray-cpus", help="CPUs of the Ray that --ray local starts (default: every CPU here)."
)
