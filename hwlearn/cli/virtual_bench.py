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
    p.add_argument("--faults", metavar="KIND=RATE,...",
                   help="inject seeded faults, e.g. timeout=0.01,late=0.01,garbled=0.01 (kinds: "
                        "timeout, late, garbled, disconnect, reboot per reply; stuck, drift per "
                        "device event; late_s, drift_per_read); replaces the bench file's "
                        "[virtual.faults]")
    p.add_argument("--fault-seed", type=int, default=None, metavar="N",
                   help="seed of the fault draws (default: the faults' own seed, else 0)")
    p.add_argument("--dmm-loading", action="store_true",
                   help="model the voltmeter's input resistance (10 MOhm / 10 GOhm) on the circuit")
    p.set_defaults(run=run)


def run(args) -> int:
    from hwlearn.config.bench import load_bench_file, parse_faults
    from hwlearn.errors import ConfigError
    from simulator.emulators import FaultRates
    from simulator.virtual_bench import VirtualBench

    config = load_bench_file(args.bench_file)
    faults, fault_seed = None, args.fault_seed
    if args.faults is not None:
        try:
            table = parse_faults(args.faults, seed=args.fault_seed)
        except ConfigError as exc:
            print(f"hwlearn virtual-bench: error: {exc}", file=sys.stderr)
            return 2
        fault_seed = table.pop("seed")
        faults = FaultRates(**table)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    bench = VirtualBench(config, latency_s=args.latency, read_noise_volts=args.read_noise,
                         seed=args.seed, twin=args.twin, watchdog_s=args.watchdog,
                         faults=faults, fault_seed=fault_seed, dmm_loading=args.dmm_loading)
    try:
        try:
            bench.start()
        except (OSError, ValueError) as exc:  # a port in use, a resource no emulator can serve
            print(f"hwlearn virtual-bench: error: {exc}", file=sys.stderr)
            return 2
        print(f"virtual bench {config.name!r} from {args.bench_file}:")
        for name, resource in bench.resources.items():
            print(f"  {name:<12} {bench.drivers[name]:<16} {resource}")
        if bench.faults.any:
            rates = ", ".join(f"{k}={getattr(bench.faults, k):g}" for k in
                              ("timeout", "late", "garbled", "disconnect", "reboot", "stuck", "drift")
                              if getattr(bench.faults, k))
            print(f"injecting faults {rates} (seed {bench.fault_seed})")
        print("ready; Ctrl-C or SIGTERM stops", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        bench.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if bench.faults.any:
        print(f"faults injected: {bench.faults_injected()}")
    print("stopped", flush=True)
    return 0
