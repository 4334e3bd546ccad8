"""Scale-out on Ray, reasonlab's one distributed engine; every command stays one process without it.

- `cluster.py`: join a cluster or start a local Ray (`--ray`, RAY_ADDRESS), and the checks that turn
  Ray's hangs into one-line errors (an address nobody answers, a request no node can hold);
- `grid.py`: a list of independent runs as Ray tasks (the sweep's cells, the sufficiency report's
  levels and controls), retried, recorded when they fail, cancelled on Ctrl-C;
- `data_parallel.py`: N actors in one torch.distributed process group (gloo on CPUs, NCCL on GPUs)
  and the collectives that split a batch between them (`Shard`).
The roles of an RL run (rollout workers, data-parallel learners) live with the stage they serve, in
rl/ and pretrain/, and use `cluster.py` and `data_parallel.py` to reach Ray.
"""
