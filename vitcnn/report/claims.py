"""The essay's claims, checked against one device's best settings: PASS, FAIL or NOT MEASURED, with the numbers.

Missing data is NOT MEASURED with what is missing, never a guess; a FLOP count with an error never decides a claim.
Comparisons of two models are decided at the largest resolution where both have a timed best at a common batch
(the essay's 1024 px when measured), and every verdict says at which resolution and batch it was decided.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vitcnn import table
from vitcnn.report.best import Best, Point, as_results, best_settings, model_order
from vitcnn.runfile import Result
from vitcnn.table import MIB, num

PASS, FAIL, NOT_MEASURED = "PASS", "FAIL", "NOT MEASURED"
CLAIM_RESOLUTION = 1024  # the essay's resolution: the real-time claim is about it alone
REALTIME_IMAGES_PER_S = 100.0
LAUNCH_BOUND_BUSY = 0.6  # below this share of a call the GPU waited on the host: the wall time measures launches
TRAIN_FACTOR_RANGE = (2.0, 4.0)  # "a training step costs about 3x inference": each model's factor within this


@dataclass(frozen=True)
class Claim:
    """One claim of the essay checked against measurements, with the numbers behind the verdict."""

    key: str
    name: str
    verdict: str  # PASS, FAIL or NOT MEASURED
    evidence: str


def _ms(seconds: float | None) -> str:
    """A latency inside a sentence, with its unit."""
    return "n/a" if seconds is None else f"{table.ms(seconds, '.3g')} ms"


def _point_text(bests: Mapping[Point, Best], model: str, res: int) -> str:
    """What is known about `model` at `res`: e.g. "bs1 ok, bs8 oom" or "no setting"."""
    found = sorted((b for b in bests.values() if b.model == model and b.resolution == res), key=lambda b: b.batch)
    if not found:
        return f"{model} at {res} px: no setting in this run"
    return f"{model} at {res} px: " + ", ".join(f"bs{b.batch} {b.status}" for b in found)


def _missing_text(bests: Mapping[Point, Best], model: str, res: int, batch: int) -> str:
    best = bests.get((model, res, batch))
    if best is None:
        return f"no {model} setting at {res} px, batch {batch} in this run"
    counts = ", ".join(f"{status} x{n}" for status, n in best.status_counts)
    why = f"; first reason: {best.reason}" if best.reason else ""
    return f"no timed {model} setting at {res} px, batch {batch} ({counts}){why}"


def _timed_batches(bests: Mapping[Point, Best], model: str, res: int) -> set[int]:
    return {n for (m, r, n), best in bests.items() if m == model and r == res and best.ok}


def _common_batch(bests: Mapping[Point, Best], a: str, b: str, res: int) -> int | None:
    """Smallest batch at which both models have a timed best at `res` (batch 1 when both have it)."""
    return min(_timed_batches(bests, a, res) & _timed_batches(bests, b, res), default=None)


def _no_common_batch(bests: Mapping[Point, Best], a: str, b: str, res: int) -> str:
    known = f"{_point_text(bests, a, res)}; {_point_text(bests, b, res)}"
    return f"no batch with a timed best for both at {res} px ({known})"


def _decision_point(bests: Mapping[Point, Best], a: str, b: str) -> tuple[int, int] | None:
    """(resolution, batch) where `a` and `b` are compared: the largest resolution where both have a timed best at
    a common batch, and the smallest such batch there."""
    resolutions = sorted({r for (_, r, _) in bests}, reverse=True)
    return next(((res, batch) for res in resolutions
                 if (batch := _common_batch(bests, a, b, res)) is not None), None)


def _largest_given(bests: Mapping[Point, Best], a: str, b: str) -> int | None:
    return max((r for (m, r, _) in bests if m in (a, b)), default=None)


def _not_compared(bests: Mapping[Point, Best], a: str, b: str) -> str:
    """Why two models could not be compared: what is known at the largest resolution either was given."""
    res = _largest_given(bests, a, b)
    if res is None:
        return f"neither {a} nor {b} is in this run"
    return f"no resolution where both have a timed best at a common batch; {_no_common_batch(bests, a, b, res)}"


def _decided_at(bests: Mapping[Point, Best], a: str, b: str, res: int, batch: int) -> str:
    """"decided at 512 px, batch 1", plus what happened above it (e.g. an OOM at 1024 px) when it is not the
    largest resolution either model was given."""
    text = f"decided at {res} px, batch {batch}"
    largest = _largest_given(bests, a, b)
    if largest is not None and largest > res:
        text += f" ({_point_text(bests, a, largest)}; {_point_text(bests, b, largest)})"
    return text


def _best_text(best: Best) -> str:
    return f"{best.model} {_ms(best.latency_s)} ({num(best.images_per_s)} img/s, {best.result.id})"


def claim_realtime(bests: Mapping[Point, Best]) -> Claim:
    """ViT-B/16 reaches real-time (>= 100 img/s) at 1024 px, batch 1, with its best setting."""
    res = CLAIM_RESOLUTION
    name = f"vit_b16 runs at >= {REALTIME_IMAGES_PER_S:g} img/s at {res} px, batch 1"
    best = bests.get(("vit_b16", res, 1))
    if best is None or not best.ok:
        return Claim("vit_realtime_1024", name, NOT_MEASURED, _missing_text(bests, "vit_b16", res, 1))
    verdict = PASS if best.images_per_s >= REALTIME_IMAGES_PER_S else FAIL
    sign = ">=" if verdict == PASS else "<"
    evidence = (f"best {best.result.id}: {num(best.images_per_s)} img/s ({_ms(best.latency_s)}) "
                f"{sign} {REALTIME_IMAGES_PER_S:g}")
    return Claim("vit_realtime_1024", name, verdict, evidence)


def _faster_claim(bests: Mapping[Point, Best], key: str, fast: str, slow: str, extra: str = "") -> Claim:
    """`fast` has a lower best latency than `slow` at the largest resolution both ran, at their smallest common
    batch there."""
    name = f"{fast} is faster than {slow} at the largest resolution measured (essay: {CLAIM_RESOLUTION} px)"
    point = _decision_point(bests, fast, slow)
    if point is None:
        return Claim(key, name, NOT_MEASURED, _not_compared(bests, fast, slow) + extra)
    res, batch = point
    a, b = bests[(fast, res, batch)], bests[(slow, res, batch)]
    verdict = PASS if a.latency_s < b.latency_s else FAIL
    evidence = (f"{_decided_at(bests, fast, slow, res, batch)}: {_best_text(a)} vs {_best_text(b)}; "
                f"{slow}/{fast} latency = {b.latency_s / a.latency_s:.3g}x{_launch_bound(a, b)}"
                f"{_other_batches(bests, fast, slow, res, batch)}{extra}")
    return Claim(key, name, verdict, evidence)


def _launch_bound(a: Best, b: Best) -> str:
    """When either side's GPU idled for a large part of its calls, the wall-time verdict is about kernel launches;
    say so and give the GPU times, which CUDA graphs (`reduce-overhead`, the `blog` profile's batch-1 candidate)
    would approach."""
    busy = {best.model: best.result.get("gpu_busy") for best in (a, b)}
    if not any(value is not None and value < LAUNCH_BOUND_BUSY for value in busy.values()):
        return ""
    gpu = {best.model: best.result.get("gpu_time_s") for best in (a, b)}
    times = " vs ".join(f"{model} {_ms(gpu[model])}" for model in gpu)
    shares = ", ".join(f"{model} {value:.2f}" for model, value in busy.items() if value is not None)
    return (f"; launch-bound (gpu_busy {shares}): GPU time alone {times}, which CUDA graphs "
            "(reduce-overhead) would approach")


def _other_batches(bests: Mapping[Point, Best], fast: str, slow: str, res: int, batch: int) -> str:
    """The same comparison at the other batches timed at `res`: a verdict at batch 1 may turn at batch 32."""
    others = sorted(_timed_batches(bests, fast, res) & _timed_batches(bests, slow, res) - {batch})
    if not others:
        return ""
    ratios = ", ".join(f"batch {n} {bests[(slow, res, n)].latency_s / bests[(fast, res, n)].latency_s:.3g}x"
                       for n in others)
    return f"; {slow}/{fast} latency at {res} px, {ratios}"


def claim_vitdet_vs_convnext(bests: Mapping[Point, Best]) -> Claim:
    return _faster_claim(bests, "vitdet_faster_than_convnext", "vitdet_b16", "convnext_b")


def speedups(bests: Mapping[Point, Best], fast: str, slow: str, batch: int) -> list[tuple[int, float]]:
    """(resolution, slow latency / fast latency) wherever both models have a timed best at `batch`."""
    out = []
    for (model, res, n), best in sorted(bests.items(), key=lambda kv: kv[0][1]):
        other = bests.get((slow, res, n))
        if model == fast and n == batch and best.ok and other is not None and other.ok:
            out.append((res, other.latency_s / best.latency_s))
    return out


def _speedup_batch(bests: Mapping[Point, Best], fast: str, slow: str) -> int | None:
    """The batch whose speedup curve to list: the claim's decision batch, else the smallest with any overlap."""
    point = _decision_point(bests, fast, slow)
    if point is not None:
        return point[1]
    batches = sorted({n for (m, _, n) in bests if m == fast})
    return next((n for n in batches if speedups(bests, fast, slow, n)), None)


def claim_vitdet_vs_vit(bests: Mapping[Point, Best]) -> Claim:
    """ViTDet-B/16 beats ViT-B/16 at 1024 px; the evidence lists the speedup at every common resolution."""
    batch = _speedup_batch(bests, "vitdet_b16", "vit_b16")
    ratios = speedups(bests, "vitdet_b16", "vit_b16", batch) if batch is not None else []
    if ratios:
        curve = ", ".join(f"{res} px {ratio:.3g}x" for res, ratio in ratios)
        extra = f". Speedup vit_b16/vitdet_b16 latency at batch {batch}: {curve}"
    else:
        extra = ". No resolution where both were timed at the same batch"
    return _faster_claim(bests, "vitdet_faster_than_vit", "vitdet_b16", "vit_b16", extra)


def _memory_claim(bests: Mapping[Point, Best], key: str, name: str, field: str, strict: bool) -> Claim:
    """vit_b16's `field` (bytes) <= (or <, if `strict`) convnext_b's, at the largest resolution both ran."""
    point = _decision_point(bests, "vit_b16", "convnext_b")
    if point is None:
        return Claim(key, name, NOT_MEASURED, _not_compared(bests, "vit_b16", "convnext_b"))
    res, batch = point
    decided = _decided_at(bests, "vit_b16", "convnext_b", res, batch)
    vit, cnn = bests[("vit_b16", res, batch)], bests[("convnext_b", res, batch)]
    mem_vit, mem_cnn = (b.result.get(field) for b in (vit, cnn))
    if mem_vit is None or mem_cnn is None:
        unmeasured = [b.result.id for b, m in ((vit, mem_vit), (cnn, mem_cnn)) if m is None]
        return Claim(key, name, NOT_MEASURED, f"{decided}: memory not measured for {', '.join(unmeasured)}")
    verdict = PASS if (mem_vit < mem_cnn if strict else mem_vit <= mem_cnn) else FAIL
    evidence = (f"{decided}: vit_b16 {mem_vit / MIB:,.1f} MiB ({vit.result.id}) vs convnext_b "
                f"{mem_cnn / MIB:,.1f} MiB ({cnn.result.id}); ratio {mem_vit / mem_cnn:.3g}")
    return Claim(key, name, verdict, evidence)


def claim_memory(bests: Mapping[Point, Best]) -> Claim:
    """ViT-B/16 needs no more activation memory than ConvNeXt-B (best settings, same batch)."""
    return _memory_claim(bests, "vit_memory_le_convnext",
                         f"vit_b16 activation memory <= convnext_b's at the largest resolution measured "
                         f"(essay: {CLAIM_RESOLUTION} px)", "activation_peak_bytes", strict=False)


def claim_training_memory(train_bests: Mapping[Point, Best]) -> Claim:
    """ViT-B/16's training step needs less memory in total than ConvNeXt-B's (weights, gradients, optimizer
    state and activations: what must fit on the device)."""
    return _memory_claim(train_bests, "vit_train_memory_lt_convnext",
                         "vit_b16 needs less training memory (total peak of a step) than convnext_b at the "
                         "largest resolution measured", "total_peak_bytes", strict=True)


def train_factors(bests: Mapping[Point, Best], train_bests: Mapping[Point, Best]) -> dict[str, list[tuple[Point, float]]]:
    """Per model, (point, best step time / best inference time) wherever both are timed at the same point."""
    out: dict[str, list[tuple[Point, float]]] = {}
    for point, step in sorted(train_bests.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        infer = bests.get(point)
        if step.ok and infer is not None and infer.ok:
            out.setdefault(point[0], []).append((point, step.latency_s / infer.latency_s))
    return out


def claim_training_factor(bests: Mapping[Point, Best], train_bests: Mapping[Point, Best]) -> Claim:
    """A training step costs about 3x an inference call, for every model (the essay's expectation): each model's
    median factor over its points within TRAIN_FACTOR_RANGE."""
    low, high = TRAIN_FACTOR_RANGE
    key, name = "train_step_about_3x", f"a training step costs about 3x inference for every model ({low:g}-{high:g}x)"
    factors = train_factors(bests, train_bests)
    if not factors:
        what = "no training step in this run" if not train_bests else "no point with both a timed step and inference"
        return Claim(key, name, NOT_MEASURED, what)
    per_model = {m: statistics.median(f for _, f in points) for m, points in factors.items()}
    verdict = PASS if all(low <= f <= high for f in per_model.values()) else FAIL
    evidence = "; ".join(
        f"{m} {per_model[m]:.3g}x (" + ", ".join(f"{r} px bs{n} {f:.3g}x" for (_, r, n), f in factors[m]) + ")"
        for m in sorted(factors, key=model_order))
    return Claim(key, name, verdict, "step time / inference time of the best settings: " + evidence)


@dataclass(frozen=True)
class Flops:
    """FLOPs per image of one model at one resolution (batch-independent), with the attention part."""

    total: float
    attention: float | None
    source: str  # the setting id they came from


def flops_per_image(results: Iterable[Result] | Mapping[str, Result]) -> dict[tuple[str, int], Flops]:
    """Per model x resolution, FLOPs / image from the ok result with a FLOP count at the smallest batch.
    A count with a `flops_error` (failed, or missed an op) is left out: an undercount must not decide a claim."""
    out: dict[tuple[str, int], Flops] = {}
    counted = [r for r in as_results(results) if r.status == "ok" and r.flops and not r.flops_error]
    for r in sorted(counted, key=lambda r: (r.setting.batch, r.id)):
        key, n = (r.setting.model, r.setting.resolution), r.setting.batch
        if key not in out:
            attention = r.get("attention_flops")
            out[key] = Flops(r.flops / n, attention / n if attention is not None else None, r.id)
    return out


def attention_crossover(flops: Mapping[tuple[str, int], Flops], model: str) -> str:
    """The lowest resolution where attention is more than half of `model`'s FLOPs, as a sentence."""
    known = sorted((res, f) for (m, res), f in flops.items() if m == model and f.attention is not None)
    if not known:
        return f"attention FLOPs of {model} not measured"
    over = [res for res, f in known if f.attention > 0.5 * f.total]
    shares = ", ".join(f"{res} px {f.attention / f.total:.0%}" for res, f in known)
    where = f"from {over[0]} px" if over else "not within measured range"
    return f"attention > 50% of {model} FLOPs: {where} (attention share: {shares})"


def _gflops(flops: Mapping[tuple[str, int], Flops], model: str, res: int) -> str:
    return num(flops[(model, res)].total / 1e9)


def claim_flops_growth(flops: Mapping[tuple[str, int], Flops]) -> Claim:
    """ViT-B/16's FLOPs grow faster with resolution than ConvNeXt-B's (quadratic attention vs linear convs)."""
    key, name = "vit_flops_grow_faster", "vit_b16 FLOPs grow faster with resolution than convnext_b's"
    crossover = attention_crossover(flops, "vit_b16")
    common = sorted({r for m, r in flops if m == "vit_b16"} & {r for m, r in flops if m == "convnext_b"})
    if len(common) < 2:
        return Claim(key, name, NOT_MEASURED, f"need FLOP counts of both at >= 2 common resolutions, have "
                                              f"{common or 'none'}; {crossover}")
    lo, hi = common[0], common[-1]
    growth = {m: flops[(m, hi)].total / flops[(m, lo)].total for m in ("vit_b16", "convnext_b")}
    verdict = PASS if growth["vit_b16"] > growth["convnext_b"] else FAIL
    evidence = (f"FLOPs({hi} px)/FLOPs({lo} px): vit_b16 {growth['vit_b16']:.3g}x "
                f"({_gflops(flops, 'vit_b16', lo)} -> {_gflops(flops, 'vit_b16', hi)} GFLOPs/img), "
                f"convnext_b {growth['convnext_b']:.3g}x ({_gflops(flops, 'convnext_b', lo)} -> "
                f"{_gflops(flops, 'convnext_b', hi)} GFLOPs/img); {crossover}")
    return Claim(key, name, verdict, evidence)


def check_claims(results: Iterable[Result] | Mapping[str, Result],
                 bests: Mapping[Point, Best] | None = None,
                 train_bests: Mapping[Point, Best] | None = None) -> list[Claim]:
    """Check the essay's claims on one device's inference results (and their best settings, when already
    computed) and training steps' best settings; missing data gives NOT MEASURED, never a guess."""
    results = [r for r in as_results(results) if r.setting.task == "infer"]
    bests = best_settings(results) if bests is None else bests
    train_bests = train_bests or {}
    return [
        claim_realtime(bests),
        claim_vitdet_vs_convnext(bests),
        claim_memory(bests),
        claim_vitdet_vs_vit(bests),
        claim_flops_growth(flops_per_image(results)),
        claim_training_factor(bests, train_bests),
        claim_training_memory(train_bests),
    ]
