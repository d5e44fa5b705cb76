"""What a cyclic-GC collection costs in a `vitcnn ab` worker, and what freezing the survivors of a setting saves.

    python results/ab-design-2026-12-07/gc_cost.py

One process, as a worker lives: a compiled smoke setting set up, timed and freed; then the cost of one
gc.collect(), the same after gc.freeze() (what vitcnn.workers.worker.Worker.free now does), and after two more
settings set up and freed through the same stages (vitcnn.measure.timing.gc_paused now keeps that freeze)."""
import gc
import time
from dataclasses import replace

from vitcnn.measure import pipeline
from vitcnn.measure.options import MeasureOptions, for_profile
from vitcnn.settings import profile_settings

settings = profile_settings("smoke", "cpu")
options = for_profile(replace(MeasureOptions(), compile_times=False, eager_twin=False, warmup_seconds=0.5), "smoke")


def cycle(setting) -> None:
    prepared = pipeline.prepare(setting, "cpu", options)
    prepared.time_block(3)
    prepared.finish()
    prepared.close()
    pipeline.free_memory()


def collect_s() -> float:
    start = time.perf_counter()
    gc.collect()
    return time.perf_counter() - start


cycle(settings[1])
print(f"after {settings[1].id}: {len(gc.get_objects()):,} tracked objects, a collection {collect_s():.3f} s")
gc.freeze()
print(f"frozen ({gc.get_freeze_count():,}): a collection {collect_s():.3f} s")
for s in (settings[0], settings[19]):
    start = time.perf_counter()
    cycle(s)
    print(f"{s.id} set up, timed, freed in {time.perf_counter() - start:.2f} s; a collection then "
          f"{collect_s():.3f} s ({gc.get_freeze_count():,} still frozen)")
