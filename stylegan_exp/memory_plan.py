"""The memory plan: the memory one training step needs on a device, and the per-device batch and gradient
accumulation that keep a schedule's global minibatch within a device's memory. Pure arithmetic: the network
sizes it works on come from `network_cost` (TensorFlow), the devices from `devices`."""

from __future__ import annotations

from dataclasses import dataclass

WEIGHT_BYTES = 4  # master weights, gradients and Adam's moments stay float32 under mixed precision
# Fitted on the CPU by benchmarks/plan_accuracy.py (StyleGAN at 32², 64², float32, bfloat16; rounded up):
# the memory a step keeps per element of the forward pass's per-image tensors (network_cost counts every one,
# most are freed or fused before the backward pass), and what the runtime holds besides (kernels' workspaces,
# traced graphs, allocator caches).
ACTIVATION_FACTOR = 0.4
RUNTIME_BYTES = int(0.6 * 2**30)
USABLE_FRACTION = 0.9  # of a device's memory: the rest is the framework's (workspaces, fragmentation)
GIB = 2**30


@dataclass(frozen=True)
class NetworkCost:
    """Sizes at one training resolution: trainable parameters of G and D (Gs is a copy of G), and the
    elements of the activations one image makes in a forward pass of G's synthesis and of D."""

    params_G: int
    params_D: int
    act_G: int
    act_D: int


def weight_bytes(cost: NetworkCost, accumulate: int) -> int:
    """G and D: weights, gradients and Adam's two moments, plus the running gradient sum when accumulating;
    Gs: its weights."""
    copies = 4 + (accumulate > 1)
    return WEIGHT_BYTES * (copies * (cost.params_G + cost.params_D) + cost.params_G)


def activation_bytes(cost: NetworkCost, micro_batch: int, element_bytes: int) -> int:
    """The larger step's taped forward pass: the D step tapes D on reals and on fakes, the G step G then D."""
    per_image = max(2 * cost.act_D, cost.act_G + cost.act_D)
    return int(ACTIVATION_FACTOR * micro_batch * per_image * element_bytes)


def peak_bytes(cost: NetworkCost, micro_batch: int, accumulate: int = 1, element_bytes: int = 4) -> int:
    """Estimated peak memory of a device training micro-batches of `micro_batch` images; `element_bytes`
    is the compute dtype's size (2 under mixed precision)."""
    return RUNTIME_BYTES + weight_bytes(cost, accumulate) + activation_bytes(cost, micro_batch, element_bytes)


@dataclass(frozen=True)
class ResolutionPlan:
    """One resolution's split: `minibatch` is the global batch the schedule trains (rounded to whole
    devices), each device takes `per_device` of it as `accumulate` micro-batches of `micro_batch`."""

    resolution: int
    minibatch: int
    per_device: int
    accumulate: int
    cost: NetworkCost
    peak_bytes: int
    budget_bytes: int

    @property
    def micro_batch(self) -> int:
        return self.per_device // self.accumulate

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.budget_bytes


def valid_micro_batch(micro: int, group_size: int) -> bool:
    """Minibatch stddev needs a micro-batch that its group size (capped at the micro-batch) divides."""
    return micro >= 1 and (group_size <= 0 or micro % min(group_size, micro) == 0)


def plan_resolution(resolution: int, minibatch: int, devices: int, memory_bytes: int, cost: NetworkCost, *,
                    element_bytes: int = 4, min_accumulate: int = 1, group_size: int = 4) -> ResolutionPlan:
    """The fewest micro-batches (at least `min_accumulate`) that split each device's share of `minibatch`
    into valid micro-batches fitting in `USABLE_FRACTION` of `memory_bytes`; when none fits, the smallest
    micro-batch's plan (`fits` is False)."""
    per_device = (minibatch - minibatch % devices) // devices
    splits = [k for k in range(min_accumulate, per_device + 1)
              if per_device % k == 0 and valid_micro_batch(per_device // k, group_size)]
    plan = None
    for k in splits or [min_accumulate]:  # none: a share min_accumulate does not divide, rounded down
        plan = split_plan(resolution, minibatch, devices, memory_bytes, cost, k, element_bytes=element_bytes)
        if plan.fits:
            break
    return plan


def split_plan(resolution: int, minibatch: int, devices: int, memory_bytes: int, cost: NetworkCost,
               accumulate: int, *, element_bytes: int = 4) -> ResolutionPlan:
    """The plan of a given split, `minibatch` rounded to whole micro-batches as the schedule rounds it."""
    minibatch -= minibatch % (devices * accumulate)
    per_device = minibatch // devices
    return ResolutionPlan(resolution, minibatch, per_device, accumulate, cost,
                          peak_bytes(cost, max(per_device // accumulate, 1), accumulate, element_bytes),
                          int(memory_bytes * USABLE_FRACTION))


def plan_table(plans: list[ResolutionPlan], device: str) -> str:
    """The plan as one table (one row per resolution)."""
    head = (f"{'res':>5} {'G params':>9} {'D params':>9} {'act/img':>9} {'minibatch':>9} "
            f"{'per ' + device:>10} {'accum':>5} {'micro':>5} {'peak GB':>8} {'of GB':>6}")
    rows = [head]
    for p in plans:
        rows.append(f"{p.resolution:>4}² {p.cost.params_G / 1e6:>8.2f}M {p.cost.params_D / 1e6:>8.2f}M "
                    f"{(p.cost.act_G + p.cost.act_D) / 1e6:>8.2f}M {p.minibatch:>9} {p.per_device:>10} "
                    f"{p.accumulate:>5} {p.micro_batch:>5} {p.peak_bytes / GIB:>8.2f} "
                    f"{p.budget_bytes / GIB:>6.1f}" + ("" if p.fits else "  does not fit"))
    return "\n".join(rows)
