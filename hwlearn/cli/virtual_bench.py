"""hwlearn virtual-bench BENCH.toml: serve every instrument of a bench file on loopback.

Emulators of the instruments (simulator/emulators) behind one simulated circuit
(simulator/virtual_circuit.py), on the ports of the bench file's resources, or on ephemeral
ports with --twin. Prints each instrument's resource, then runs until Ctrl-C or SIGTERM and
stops cleanly (exit 0). The emulators are imported when the command runs, so other commands start fast.
"""

from __future__ import annotations

import signal
import sys
import threading


def add_parser(sub) -> None:
    p = sub.add_parser("virtual-bench", help="serve a bench file's instruments as emulators",
                       description="Start an emulator for every instrument of BENCH.toml on "
                       "127.0.0.1, all backed by one simulated circuit, so that the real drivers "
                       "(and `hwlearn bench check`) can talk to them. Stops on Ctrl-C or SIGTERM.")
    p.add_argument("bench_file", metavar="BENCH.toml")
    p.add_argument("--twin", action="store_true",
                   help="ephemeral ports for every instrument instead of the file's resources")
    p.add_argument("--latency", type=float, default=0.0, metavar="S",
                   help="seconds before every reply (default 0)")
    p.add_argument("--read-noise", type=float, default=0.0, metavar="V",
                   help="Gaussian noise of every multiplexer reading, volts (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the read noise")
    p.add_argument("--watchdog", type=float, default=2.0, metavar="S",
                   help="the emulated board's watchdog timeout (default 2 s)")
    p.set_defaults(run=run)


def run(args) -> int:
    from hwlearn.config.bench import load_bench_file
    from simulator.virtual_bench import VirtualBench

    config = load_bench_file(args.bench_file)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    bench = VirtualBench(config, latency_s=args.latency, read_noise_volts=args.read_noise,
                         seed=args.seed, twin=args.twin, watchdog_s=args.watchdog)
    try:
        try:
            bench.start()
        except (OSError, ValueError) as exc:  # a port in use, a resource no emulator can serve
            print(f"hwlearn virtual-bench: error: {exc}", file=sys.stderr)
            return 2
        print(f"virtual bench {config.name!r} from {args.bench_file}:")
        for name, resource in bench.resources.items():
            print(f"  {name:<12} {bench.drivers[name]:<16} {resource}")
        print("ready; Ctrl-C or SIGTERM stops", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        bench.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped", flush=True)
    return 0
