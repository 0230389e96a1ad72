"""One training iteration of ours equals the original's (tests/step_reference.py restates it from the
NVlabs files): StyleGAN at a stable lod and while fading, StyleGAN2 with a lazy path-length and R1 step.

Our `iteration` runs from a mid-training state (after a warm-up iteration; Gs pulled away from G; Adam's
second moments spread over each variable so that no update is the sign of a rounding-sized gradient) and
records the state after every op it calls (D step, Gs update, G step, path-length and R1 steps). The
reference runs the original's iteration in its own order and starts each op from the state ours had before
it: at these sizes a weight one float32 ulp off flips a leaky ReLU somewhere and moves a later gradient by
percents, so ops are compared one at a time, on equal inputs. Both sides see the same reals and the same
random draws: the reference replays our tf.random.Generator, from which the package also draws every layer's
training noise (`nets.layers.noise_from`).

After each op the statistics, the gradients (Adam's m: β1 = 0 makes m the step's gradient), Adam's v, where
the generator stands, and every variable of G, D and Gs must agree to 1e-5: moments as the norm of the
difference against the norm of the moment, weights elementwise against the op's largest change of that
variable (past the float32 rounding of the stored weight). Breaking one piece of ours on purpose must break
the agreement.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf
from step_reference import ADAM, OriginalIteration, Record

import stylegan_exp.models.stylegan.training as steps_module
import stylegan_exp.models.stylegan2.training as stylegan2_steps_module
import stylegan_exp.nets.generator as generator_module
from stylegan_exp.config import ScheduleConfig
from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan.training import StyleGANSteps
from stylegan_exp.models.stylegan2.config import StyleGAN2Config
from stylegan_exp.models.stylegan2.training import StyleGAN2Steps
from stylegan_exp.schedule import ScheduleState

pytestmark = pytest.mark.slow  # each comparison traces both the original's graph and ours

TOL = 1e-5
MINIBATCH = 8  # two minibatch-stddev groups of 4
STYLEGAN = StyleGANConfig(name="parity", fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16,
                          mapping_layers=2, mapping_fmaps=16)
STYLEGAN2 = StyleGAN2Config(name="parity", fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16,
                            mapping_layers=2, mapping_fmaps=16)


@dataclasses.dataclass(frozen=True)
class Case:
    model: StyleGANConfig | StyleGAN2Config
    resolution: int
    lod: float
    D_repeats: int
    G_lrate: float
    D_lrate: float

    @property
    def stylegan2(self) -> bool:
        return isinstance(self.model, StyleGAN2Config)

    @property
    def level(self) -> int:
        return int(math.log2(self.resolution)) - math.floor(self.lod)

    def sched(self) -> ScheduleState:
        return ScheduleState(kimg=0.0, lod=self.lod, resolution=2**self.level, minibatch=MINIBATCH,
                             G_lrate=self.G_lrate, D_lrate=self.D_lrate, tick_kimg=1.0)

    def schedule(self) -> ScheduleConfig:
        # A 100-image half-life makes the Gs average move far above float32 rounding.
        return ScheduleConfig(name="parity", minibatch_repeats=2, D_repeats=self.D_repeats,
                              G_smoothing_kimg=0.1)

    def reals(self, seed: int, count: int) -> list[tf.Tensor]:
        rng = np.random.default_rng(seed)
        size = 2**self.level
        pixels = [rng.integers(0, 256, (MINIBATCH, size, size, 3)) for _ in range(count)]
        return [tf.constant(x * (2.0 / 255.0) - 1.0, tf.float32) for x in pixels]


# 16² nets at lod 1 (8²: D sees the reals upscaled ×2, and R1 is measured on them) and at lod 1.5 (8² fading
# in over 4²); StyleGAN2 at 8², where the original feeds G's learning rate to every optimizer (so both equal).
CASES = {
    "stylegan_stable": Case(STYLEGAN, 16, 1.0, D_repeats=2, G_lrate=0.002, D_lrate=0.003),
    "stylegan_fading": Case(STYLEGAN, 16, 1.5, D_repeats=1, G_lrate=0.002, D_lrate=0.003),
    "stylegan2": Case(STYLEGAN2, 8, 0.0, D_repeats=1, G_lrate=0.002, D_lrate=0.002),
}
RNG_ALG = tf.random.Algorithm.PHILOX.value  # tf.random.Generator.from_seed's
STEP_NAMES = ("d_step", "g_step", "update_gs", "g_reg_step", "d_reg_step")


def build_nets(case: Case) -> tuple[tf.Module, tf.Module, tf.Module]:
    return (build_generator(case.model, case.resolution), build_discriminator(case.model, case.resolution),
            build_generator(case.model, case.resolution))


def build_steps(case: Case, model: StyleGANConfig | StyleGAN2Config | None = None) -> StyleGANSteps:
    G, D, Gs = build_nets(case)
    cls = StyleGAN2Steps if case.stylegan2 else StyleGANSteps
    steps = cls(G, D, Gs, model or case.model, seed=3)
    assert (steps.G_opt.beta1, steps.G_opt.epsilon) == (ADAM["beta1"], ADAM["epsilon"])  # m is the gradient
    assert steps.rng.algorithm == RNG_ALG
    return steps


def state_of(steps: StyleGANSteps) -> dict[str, list[np.ndarray]]:
    """Every number the next op depends on or changes."""
    state = {net: [v.numpy() for v in getattr(steps, net).variables] for net in ("G", "D", "Gs")}
    for key, opt in (("G", steps.G_opt), ("D", steps.D_opt)):
        state[f"{key}_m"] = [m.numpy() for m in opt.m]
        state[f"{key}_v"] = [v.numpy() for v in opt.v]
    state["pl_mean"] = [np.float64(steps.pl_mean.numpy())] if hasattr(steps, "pl_mean") else [np.float64(0)]
    state["rng"] = [steps.rng.state.numpy()]
    return state


def load_state(steps: StyleGANSteps, start: Record) -> None:
    state = start.state
    for net in ("G", "D", "Gs"):
        for var, value in zip(getattr(steps, net).variables, state[net], strict=True):
            var.assign(value)
    for key, opt in (("G", steps.G_opt), ("D", steps.D_opt)):
        for slot, value in zip(opt.m + opt.v, state[f"{key}_m"] + state[f"{key}_v"], strict=True):
            slot.assign(value)
        opt.step.assign(start.applied[key])
    steps.rng.reset(state["rng"][0])
    if hasattr(steps, "pl_mean"):
        steps.pl_mean.assign(state["pl_mean"][0])
        steps.minibatches.assign(0)  # both lazy regularizers run in the first minibatch, not in the second


def run_ours(case: Case, steps: StyleGANSteps, start: Record) -> list[Record]:
    """Our `iteration`, recording the state after every op it calls."""
    load_state(steps, start)
    records, originals = [], {name: getattr(steps, name) for name in STEP_NAMES if hasattr(steps, name)}
    for name in originals:
        def recorded(*args, _op=originals[name], _name=name):
            out = _op(*args)
            stats = {k: float(v) for k, v in (out or {}).items()}
            applied = {"G": int(steps.G_opt.step.numpy()), "D": int(steps.D_opt.step.numpy())}
            records.append(Record(_name, stats, state_of(steps), applied))
            return out

        setattr(steps, name, recorded)
    sched = case.sched()
    steps.set_learning_rates(sched.G_lrate, sched.D_lrate)
    steps.iteration(iter(case.reals(2, 4)), sched, case.schedule())
    for name, op in originals.items():
        setattr(steps, name, op)
    return records


def run_reference(case: Case, start: Record, ours: list[Record]) -> list[Record]:
    """The original's iteration, each op started from the state ours had before it."""
    G, D, Gs = build_nets(case)
    sched = case.sched()
    ref = OriginalIteration(G, D, Gs, lod=case.lod, minibatch=MINIBATCH, G_lrate=sched.G_lrate,
                            D_lrate=sched.D_lrate, G_smoothing_kimg=case.schedule().G_smoothing_kimg,
                            stylegan2=case.stylegan2, rng_alg=RNG_ALG)
    before = [start, *ours]
    ref.sync = lambda index: (before[min(index, len(ours))].state, before[min(index, len(ours))].applied)
    return ref.run(iter(case.reals(2, 4)), case.schedule().minibatch_repeats, case.D_repeats)


def mismatches(ours: list[Record], ref: list[Record], start: Record) -> tuple[list[str], dict[str, object]]:
    """Disagreements beyond TOL, and the worst error of each kind (relative to its scale) and where it is."""
    if [r.name for r in ours] != [r.name for r in ref]:
        return [f"order: ours {[r.name for r in ours]}, original {[r.name for r in ref]}"], {}
    problems, worst = [], {}
    for i, (o, r, before) in enumerate(zip(ours, ref, [start, *ours][: len(ours)], strict=True)):
        where = f"op {i} {r.name}"
        for key, want in r.stats.items():
            err = abs(o.stats[key] - want) / max(abs(want), 1.0)
            if err > worst.get("stats", 0.0):
                worst["stats"], worst["stats_at"] = err, f"{where} {key}"
            if err > TOL:
                problems.append(f"{where} {key}: ours {o.stats[key]:.7g}, original {want:.7g}")
        if not np.array_equal(o.state["rng"][0], r.state["rng"][0]):
            problems.append(f"{where} draws: ours left the generator at {o.state['rng'][0]}, the original at "
                            f"{r.state['rng'][0]}")
        for key, wants in r.state.items():
            if key == "rng":
                continue
            kind = "moments" if key.endswith(("_m", "_v")) else "weights"
            # A moment smaller than the network's root-mean-square one (a noise strength's gradient: one
            # number summed over every pixel, left with ~1e-5 of itself by float32 cancellation) is
            # measured against that.
            typical = math.sqrt(sum(np.sum(np.square(w, dtype=np.float64)) for w in wants) / len(wants))
            for j, (got, want, prev) in enumerate(zip(o.state[key], wants, before.state[key], strict=True)):
                got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
                if kind == "moments":  # the norm of the difference against the norm of the moment
                    scale, excess = max(np.linalg.norm(want), typical), np.linalg.norm(got - want)
                else:  # elementwise against this op's largest change, past the rounding of the float32 weight
                    scale = np.max(np.abs(want - np.asarray(prev, np.float64)), initial=0.0)
                    slack = 2 * np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
                    excess = np.max(np.abs(got - want) - slack, initial=0.0)
                err = excess / scale if scale > 0 else (np.inf if excess > 0 else 0.0)
                if err > worst.get(kind, 0.0):
                    worst[kind], worst[f"{kind}_at"] = float(err), f"{where} {key}[{j}]"
                if err > TOL:
                    diff = np.max(np.abs(got - want))
                    problems.append(f"{where} {key}[{j}]: max |ours - original| {diff:.3g} against a "
                                    f"scale of {scale:.3g}")
    return problems, worst


_STARTS: dict[str, tuple[Record, StyleGANSteps]] = {}


def start_of(name: str) -> tuple[Record, StyleGANSteps]:
    """The mid-training state a case starts from, and our (traced) steps that reached it."""
    if name not in _STARTS:
        case = CASES[name]
        tf.random.set_seed(5)
        steps = build_steps(case)
        sched = case.sched()
        steps.set_learning_rates(sched.G_lrate, sched.D_lrate)
        steps.iteration(iter(case.reals(1, 4)), sched, case.schedule())
        state = state_of(steps)
        rng = np.random.default_rng(4)
        state["Gs"] = [gs + rng.normal(0, 0.1, gs.shape).astype(np.float32) if gs.dtype == np.float32 else gs
                       for gs in state["Gs"]]
        for key in ("G_v", "D_v"):  # every element of a trained variable gets a second moment of its scale
            state[key] = [v.mean() * rng.uniform(0.5, 2.0, v.shape).astype(np.float32) for v in state[key]]
        applied = {"G": int(steps.G_opt.step.numpy()), "D": int(steps.D_opt.step.numpy())}
        _STARTS[name] = (Record("start", {}, state, applied), steps)
    return _STARTS[name]


def compare(name: str, steps: StyleGANSteps | None = None
            ) -> tuple[list[str], dict[str, object], list[Record]]:
    start, warmed_up = start_of(name)
    ours = run_ours(CASES[name], steps or warmed_up, start)
    ref = run_reference(CASES[name], start, ours)
    problems, worst = mismatches(ours, ref, start)
    return problems, worst, ours


@pytest.mark.parametrize("name", [pytest.param("stylegan_stable", marks=pytest.mark.slow), "stylegan_fading",
                                  pytest.param("stylegan2", marks=pytest.mark.slow)])
def test_iteration_equals_the_originals(name):
    """Every op of the iteration, in the original's order, to 1e-5 (the worst errors are printed with -s)."""
    problems, worst, ours = compare(name)
    print(name, worst)
    assert not problems, "\n".join(problems[:12])
    case = CASES[name]
    expected = (["g_step", "g_reg_step", "d_step", "update_gs", "d_reg_step", "g_step", "d_step", "update_gs"]
                if case.stylegan2 else
                (["d_step", "update_gs"] * case.D_repeats + ["g_step"]) * case.schedule().minibatch_repeats)
    assert [r.name for r in ours] == expected


def _double_r1(real_grads, upscale=1):
    return 2.0 * tf.reduce_sum(tf.square(real_grads), axis=[1, 2, 3]) / upscale**2


def _sum_not_mean(replica):
    def summed(self, micro, total, level, fade):
        return replica(self, micro, tf.ones_like(total), level, fade)
    return summed


# What is broken: (case, how, where the first disagreement must be, whether the traced steps must be rebuilt).
BREAKS = {
    "r1_without_half": ("stylegan_stable", lambda mp: mp.setattr(steps_module, "r1_penalty", _double_r1),
                        "op 0 d_step loss/D", True),
    "no_style_mixing": ("stylegan_fading", "style_mixing_prob", "op 0 d_step", True),
    "mixing_cutoff_at_full_depth": ("stylegan_stable", lambda mp: mp.setattr(
        generator_module, "num_style_layers", lambda level: 6), "d_step", True),
    "gs_beta_0.999": ("stylegan_fading", lambda mp: mp.setattr(steps_module, "gs_beta", lambda *a: 0.999),
                      "op 1 update_gs Gs", False),
    "g_loss_summed": ("stylegan_stable",
                      lambda mp: mp.setattr(StyleGANSteps, "g_replica",
                                            _sum_not_mean(StyleGANSteps.g_replica)),
                      "op 4 g_step loss/G", True),
    "no_lazy_adam_rescale": ("stylegan2",
                             lambda mp: mp.setattr(stylegan2_steps_module, "lazy_adam",
                                                   lambda lr, b1, b2, interval: (lr, b1, b2)),
                             "op 0 g_step G[", True),
    "pl_mean_as_a_constant": ("stylegan2",
                              lambda mp: mp.setattr(stylegan2_steps_module, "pl_correction", lambda *a: 0.0),
                              "op 1 g_reg_step G[", True),
}


@pytest.mark.parametrize("broken", list(BREAKS))
def test_a_broken_piece_breaks_the_agreement(broken, monkeypatch):
    name, how, first, rebuild = BREAKS[broken]
    case = CASES[name]
    start_of(name)  # the start state comes from the unbroken steps
    model = None
    if how == "style_mixing_prob":
        model = dataclasses.replace(case.model, style_mixing_prob=0.0)
    else:
        how(monkeypatch)
    tf.config.run_functions_eagerly(rebuild)  # no tracing: the broken steps need only disagree
    try:
        problems, _, _ = compare(name, build_steps(case, model) if rebuild else None)
    finally:
        tf.config.run_functions_eagerly(False)
    assert problems, f"breaking {broken} went unnoticed"
    assert first in problems[0], problems[:3]
