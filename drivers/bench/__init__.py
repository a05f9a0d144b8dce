"""The bench: a Rig composed of instrument drivers from a bench file."""

from drivers.bench.crossbar import CrossbarBench, bench_class, open_bench
from drivers.bench.rig import Bench, BenchError

__all__ = ["Bench", "BenchError", "CrossbarBench", "bench_class", "open_bench"]
