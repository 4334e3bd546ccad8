"""A cost model of one RL step (generation, update, weight broadcast, all-reduce) and its predictions.

The step of rl/trainer.py is: sample B = prompts x group completions, judge them, one no-grad forward
(the trainer's log-probs), forward + backward of the update, then (with rollout workers) one broadcast
of the weights. With R rollout workers and N data-parallel learners, each on its own device:

    generation  = prefill + T x max((weights + KV cache read) / memory bandwidth, 2 P (B / R) / FLOP/s)
    update      = (2 + 6) P B (prompt + T) / (N x train FLOP/s)           no-grad forward + fwd/bwd
    all-reduce  = 2 (N - 1) / N x gradient bytes / all-reduce bandwidth    ring all-reduce, per update
    broadcast   = weight bytes x (1 / put rate + 1 / load rate + (nodes - 1) / network bandwidth)
    sync step   = generation + update + all-reduce + broadcast + overhead
    async step  = max(generation, update + all-reduce + broadcast) + overhead   (rl.async: one step stale)

Decoding reads every weight and the KV cache once per token step and its FLOPs grow with the batch,
so it is bandwidth-bound at small batches and compute-bound at large ones (the max above); T is the
longest completion (a batch decodes until its last row stops). The broadcast is what
rl/rollout_workers.py does: one `ray.put` of the weights (copied off the learner's device, as numpy
arrays), one copy per other node (Ray's object store keeps one copy per node, which every worker there
reads) and each worker's load into its model, the workers in parallel.

The constants come from two places, kept apart in the output: on this machine they are fitted to the
step times benchmarks/ray_rollouts.py and benchmarks/ray_learners.py measured (their JSON in
benchmarks/out/); for a GPU cluster they are the hardware's published peaks times stated efficiencies,
so those rows are predictions, not measurements.
Usage:

    python benchmarks/scaling_model.py                 # reads benchmarks/out/ray_*.json when present
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

OUT = Path(__file__).parent / "out"


@dataclass(frozen=True)
class Shape:
    """The model and the step: parameters P, bytes per weight, B sequences of prompt + T new tokens."""

    params: float
    weight_bytes: float  # per parameter as the samplers read them (bf16: 2)
    grad_bytes: float  # per parameter as the learners all-reduce them (fp32: 4)
    sequences: int
    prompt_tokens: int
    new_tokens: int
    kv_bytes_per_token: float = 0.0  # 2 (K, V) x layers x KV heads x head dim x bytes


@dataclass(frozen=True)
class Hardware:
    """Effective rates of one device and the links between devices (bytes/s, FLOP/s)."""

    train_flops: float
    decode_flops: float
    memory_bw: float
    allreduce_bw: float
    put_bw: float  # weights into the object store (bytes/s)
    load_bw: float  # weights from the object store into a worker's model (bytes/s)
    network_bw: float  # one node's object store to another's
    overhead_s: float = 0.0


@dataclass(frozen=True)
class Layout:
    rollout_workers: int  # R (0: the driver samples with its own copy, one device, no broadcast)
    learners: int  # N
    asynchronous: bool = False
    nodes: int = 1


def generation_s(s: Shape, hw: Hardware, workers: int) -> float:
    b = s.sequences / max(workers, 1)  # sequences per worker
    prefill = 2 * s.params * b * s.prompt_tokens / hw.decode_flops
    kv = s.kv_bytes_per_token * b * (s.prompt_tokens + s.new_tokens / 2)  # mean context per step
    per_token = max(
        (s.params * s.weight_bytes + kv) / hw.memory_bw, 2 * s.params * b / hw.decode_flops
    )
    return prefill + s.new_tokens * per_token


def update_s(s: Shape, hw: Hardware, learners: int) -> float:
    tokens = s.sequences * (s.prompt_tokens + s.new_tokens)
    return 8 * s.params * tokens / (learners * hw.train_flops)


def allreduce_s(s: Shape, hw: Hardware, learners: int) -> float:
    return 2 * (learners - 1) / learners * s.params * s.grad_bytes / hw.allreduce_bw


def broadcast_s(s: Shape, hw: Hardware, layout: Layout) -> float:
    if layout.rollout_workers == 0:
        return 0.0
    weights = s.params * s.weight_bytes
    return weights * (1 / hw.put_bw + 1 / hw.load_bw + (layout.nodes - 1) / hw.network_bw)


def step_s(s: Shape, hw: Hardware, layout: Layout) -> dict[str, float]:
    """Each part of one RL step and the step itself (seconds)."""
    parts = {
        "generation": generation_s(s, hw, layout.rollout_workers),
        "update": update_s(s, hw, layout.learners),
        "allreduce": allreduce_s(s, hw, layout.learners),
        "broadcast": broadcast_s(s, hw, layout),
    }
    learn = parts["update"] + parts["allreduce"] + parts["broadcast"]
    body = max(parts["generation"], learn) if layout.asynchronous else parts["generation"] + learn
    return {**parts, "step": body + hw.overhead_s}


def bottleneck(parts: dict[str, float]) -> str:
    return max(("generation", "update", "allreduce", "broadcast"), key=parts.__getitem__)


# ---- measured here ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """What benchmarks/ray_rollouts.py and ray_learners.py measured (seconds, bytes/s)."""

    sample_s: dict[str, float]  # sampling part of the RL step by rollout workers "0", "1", "2"
    sync_async_s: dict[str, float]  # RL step, 1 worker, "sync" / "async"
    put_bw: float  # the 0.5B-shaped model's bf16 weights into the object store
    load_bw: float  # ... and into 2 workers' models
    update_s: dict[str, float]  # RL update by "in_process", "ray_1", "ray_2"


def load_measured(out: Path) -> Measured | None:
    """The Ray benchmarks' results; None when they have not been run."""
    rollouts, learners = out / "ray_rollouts.json", out / "ray_learners.json"
    if not (rollouts.is_file() and learners.is_file()):
        return None
    r, l = json.loads(rollouts.read_text()), json.loads(learners.read_text())
    big = r["broadcast"]["qwen2_0.5b_shape"]
    size = big["megabytes"] * 1e6
    return Measured(
        sample_s={k: v["median_sample_s"] for k, v in r["rl_step"].items()},
        sync_async_s={k: v["median_step_s"] for k, v in r["sync_async"].items()},
        put_bw=size / big["median_put_s"],
        load_bw=size / big["median_load_s"],
        update_s={k: v["median_step_s"] for k, v in l["rl_update"].items() if "median_step_s" in v},
    )


def cpu_check(m: Measured) -> list[tuple[str, float, float, str]]:
    """The model's parts, fitted to one configuration each, against the configurations measured beside
    it: (what, predicted s, measured s, the fit)."""
    one_worker = m.sample_s["1"]  # one worker of one thread samples the whole draw
    dp_fixed = m.update_s["ray_2"] - m.update_s["ray_1"] / 2  # what N = 2 adds to half the work
    sync_step = m.sync_async_s["sync"]  # generation + the rest, one after the other
    return [
        ("sampling, 2 workers", one_worker / 2, m.sample_s["2"], "generation / R, from R = 1"),
        (
            "RL update, 2 learners",
            m.update_s["ray_1"] / 2 + dp_fixed,
            m.update_s["ray_2"],
            f"update / N + a fixed {dp_fixed * 1e3:.0f} ms (collectives, Ray calls), fitted here",
        ),
        (
            "RL step, 1 worker, async",
            max(one_worker, sync_step - one_worker),
            m.sync_async_s["async"],
            "max(generation, update): assumes each role has its own device",
        ),
    ]


# ---- the GPU cluster: published peaks x stated efficiencies (predictions) --------------------------

H200_BF16 = 989e12  # dense bf16 FLOP/s (NVIDIA H200 SXM datasheet)
H200_HBM = 4.8e12  # bytes/s
NVLINK_BUS = 450e9  # bytes/s per direction of NVLink 4 (900 GB/s bidirectional)
IB_PER_GPU = 50e9  # bytes/s: one 400 Gb/s NIC per GPU
TCP_PER_NODE = 12.5e9  # bytes/s: Ray's object transfer over a 100 Gb/s Ethernet port (no RDMA)
EFFICIENCY = {"train": 0.35, "decode": 0.30, "memory": 0.70, "nccl": 0.80, "tcp": 0.60}


def gpu_hardware(nodes: int, put_bw: float, load_bw: float) -> Hardware:
    """One H200 with the links of `nodes` x 8 GPUs: NVLink inside a node, InfiniBand between nodes (a
    ring all-reduce runs at its slowest link); weights reach rollout workers through Ray's object store
    at the put and load rates measured here (the same code path), over TCP between nodes."""
    return Hardware(
        train_flops=H200_BF16 * EFFICIENCY["train"],
        decode_flops=H200_BF16 * EFFICIENCY["decode"],
        memory_bw=H200_HBM * EFFICIENCY["memory"],
        allreduce_bw=(NVLINK_BUS if nodes == 1 else IB_PER_GPU) * EFFICIENCY["nccl"],
        put_bw=put_bw,
        load_bw=load_bw,
        network_bw=TCP_PER_NODE * EFFICIENCY["tcp"],
        overhead_s=1.0,
    )


QWEN_1_5B = (
    Shape(  # Qwen2.5-1.5B: 28 layers, 2 KV heads of 128; a DAPO-like step of 128 x 8 samples
        params=1.54e9,
        weight_bytes=2,
        grad_bytes=4,
        sequences=1024,
        prompt_tokens=256,
        new_tokens=2048,
        kv_bytes_per_token=2 * 28 * 2 * 128 * 2,
    )
)


def gpu_layouts(nodes: int) -> list[tuple[str, Layout]]:
    """Ways to use nodes x 8 GPUs: a GPU per role (rollout worker or learner)."""
    gpus = 8 * nodes
    half = gpus // 2
    return [
        (f"{gpus - 1} learners + 1 rollout worker", Layout(1, gpus - 1, False, nodes)),
        (f"{half} rollout workers + {half} learners", Layout(half, half, False, nodes)),
        (f"{half} rollout workers + {half} learners, async", Layout(half, half, True, nodes)),
        (
            f"{gpus * 3 // 4} rollout workers + {gpus // 4} learners",
            Layout(gpus * 3 // 4, gpus // 4, False, nodes),
        ),
        (
            f"{gpus // 4} rollout workers + {gpus * 3 // 4} learners, async",
            Layout(gpus // 4, gpus * 3 // 4, True, nodes),
        ),
    ]


def best_split(s: Shape, hw: Hardware, nodes: int, asynchronous: bool) -> tuple[int, float]:
    """The number of rollout workers (the rest learners) with the shortest predicted step."""
    gpus = 8 * nodes
    steps = {
        r: step_s(s, hw, Layout(r, gpus - r, asynchronous, nodes))["step"] for r in range(1, gpus)
    }
    r = min(steps, key=steps.__getitem__)
    return r, steps[r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    m = load_measured(args.out)
    if m is None:
        raise SystemExit("run benchmarks/ray_rollouts.py and benchmarks/ray_learners.py first")
    put, load = m.put_bw / 1e9, m.load_bw / 1e9
    print(f"measured here: object store put {put:.2f} GB/s, load {load:.2f} GB/s")
    print("\n| check (this machine) | predicted s | measured s | fit |")
    print("|---|---|---|---|")
    for what, predicted, measured, fit in cpu_check(m):
        print(f"| {what} | {predicted:.3f} | {measured:.3f} | {fit} |")
    for variant, put_bw, load_bw in (
        ("object store at the rates measured here", m.put_bw, m.load_bw),
        ("weights over NCCL at NVLink / InfiniBand speed (not built)", None, None),
    ):
        for nodes in (1, 4):
            link = (NVLINK_BUS if nodes == 1 else IB_PER_GPU) * EFFICIENCY["nccl"]
            hw = gpu_hardware(nodes, put_bw or 2 * link, load_bw or 2 * link)
            if put_bw is None:
                hw = replace(hw, network_bw=link)
            s = QWEN_1_5B
            print(
                f"\npredicted, {variant}: Qwen2.5-1.5B shape, {s.sequences} sequences of "
                f"{s.prompt_tokens} + {s.new_tokens} tokens, {nodes} x 8 H200"
            )
            print(
                "| layout | generation s | update s | all-reduce s | broadcast s | step s | bottleneck |"
            )
            print("|---|---|---|---|---|---|---|")
            for name, layout in gpu_layouts(nodes):
                p = step_s(s, hw, layout)
                print(
                    f"| {name} | {p['generation']:.1f} | {p['update']:.1f} | {p['allreduce']:.2f} | "
                    f"{p['broadcast']:.2f} | {p['step']:.1f} | {bottleneck(p)} |"
                )
            for asynchronous in (False, True):
                r, t = best_split(s, hw, nodes, asynchronous)
                mode = "async" if asynchronous else "sync"
                print(
                    f"best {mode} split: {r} rollout workers + {8 * nodes - r} learners, {t:.1f} s"
                )


if __name__ == "__main__":
    main()
