"""The simulator at Xiang Hu Bao's scale: ~100M members × 80 periods × 1,000 scenarios.

Runs `mutualaid.forecasts.simulation.simulate` (the engine behind `mutualaid simulate`) with the
shipped plan and default model, and samples the resident memory of this process plus its worker
processes every 20 ms. Prints wall time, CPU time, throughput and peak memory.

    python benchmarks/bench_simulation.py                                  # 80 × 1,000, all cores
    python benchmarks/bench_simulation.py --workers 1 --scenarios 200      # one core

Figures go to benchmarks/RESULTS.md with the command that made them.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import psutil

from mutualaid.domain.plans import parse_plan_toml
from mutualaid.domain.sharing import SharingRule
from mutualaid.forecasts.models import default_model
from mutualaid.forecasts.simulation import SimulationSettings, simulate
from mutualaid.plan_files import read_plan_file


class MemorySampler:
    """Peak of (this process + its children) resident memory, sampled in a thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_total = 0
        self.peak_single = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                processes = [me, *me.children(recursive=True)]
                sizes = []
                for process in processes:
                    try:
                        sizes.append(process.memory_info().rss)
                    except psutil.Error:
                        continue
                self.peak_total = max(self.peak_total, sum(sizes))
                self.peak_single = max(self.peak_single, max(sizes, default=0))
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=80)
    parser.add_argument("--scenarios", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--rule", choices=[rule.value for rule in SharingRule], default=SharingRule.UNIFORM.value
    )
    args = parser.parse_args()

    rules = parse_plan_toml(read_plan_file("xhb-main.toml"))
    settings = SimulationSettings(
        periods=args.periods,
        scenarios=args.scenarios,
        seed=args.seed,
        rule=SharingRule(args.rule),
        workers=args.workers,
    )
    cpu_before = os.times()
    began = time.perf_counter()
    with MemorySampler() as memory:
        result = simulate(rules, default_model(), settings)
    wall = time.perf_counter() - began
    cpu_after = os.times()
    cpu = sum(after - before for after, before in zip(cpu_after[:4], cpu_before[:4], strict=True))

    members = result["members"]
    member_periods = int(members.sum())
    cells = sum(t + 1 for t in range(args.periods)) * 2 * result.setup.bands * args.scenarios
    print(
        f"{args.periods} periods × {args.scenarios:,} scenarios, rule {args.rule}, "
        f"{args.workers} worker(s), {os.cpu_count()} CPU(s) seen"
    )
    print(f"peak members (median over scenarios): {np.median(members.max(axis=1)):,.0f}")
    print(
        f"member-periods simulated: {member_periods:,} "
        f"({member_periods / wall / 1e9:,.1f} billion a second)"
    )
    print(f"cohort cells drawn: {cells:,} ({cells / wall / 1e6:,.1f} million a second)")
    print(f"wall time: {wall:,.1f} s; CPU time (all processes): {cpu:,.1f} s")
    print(
        f"peak memory: {memory.peak_total / 2**20:,.0f} MiB in all "
        f"(largest process {memory.peak_single / 2**20:,.0f} MiB)"
    )
    result_bytes = sum(array.nbytes for array in result.arrays.values())
    print(f"result arrays: {result_bytes / 2**20:,.1f} MiB")


if __name__ == "__main__":
    main()
