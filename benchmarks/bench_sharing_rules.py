"""Period close under each sharing rule, against the uniform close in the same run (issue 19).

Loads one database of N members (`bench_periods.load`: persons with birth dates, 75 earlier
periods, Xiang Hu Bao's claim rate), then closes 7 March 2026 once under the uniform rule and once
under each non-uniform rule (the close undone and the plan republished with the rule in between),
each close and its notice in a fresh child process (`--repeat R`: R closes per rule, the fastest
counts). Prints, per rule, the close + notice time and its ratio to the uniform close of the same
run, and the time to the figures ("computing": counting the bands, the weights, the split).

    python benchmarks/bench_sharing_rules.py --db sqlite --members 100000
    python benchmarks/bench_sharing_rules.py --db postgresql --members 1000000
    python benchmarks/bench_sharing_rules.py --db sqlite --members 100000 --reuse --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from bench_periods import DEFAULT_POSTGRES, DEFAULT_SQLITE, load, reset, run_child, say

from mutualaid.domain.sharing import SharingRule


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="Database URL (default: bench_periods' database)")
    parser.add_argument("--members", type=int, default=100_000, help="Size of the pool")
    parser.add_argument("--reuse", action="store_true", help="Keep the loaded database")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Closes per rule; the fastest counts (shared CPUs)"
    )
    parser.add_argument(
        "--rules",
        nargs="*",
        choices=[str(r) for r in SharingRule if r is not SharingRule.UNIFORM],
        default=[str(r) for r in SharingRule if r is not SharingRule.UNIFORM],
    )
    args = parser.parse_args()
    url = args.url or (f"sqlite:///{DEFAULT_SQLITE}" if args.db == "sqlite" else DEFAULT_POSTGRES)
    say(f"bench_sharing_rules: {args.db}, {args.members:,} members, {os.cpu_count()} CPUs")
    if not args.reuse:
        load(url, args.members, memberships_only=False)
    results: dict[str, Any] = {"db": args.db, "members": args.members, "rules": {}}
    uniform: float | None = None
    for rule in ["uniform", *args.rules]:
        runs = []
        for _ in range(args.repeat):
            reset(url, capped=False, rule=rule)
            runs.append(run_child("close", url))
        close = min(runs, key=lambda run: float(run["total_s"]))
        seconds = float(close["total_s"])
        uniform = seconds if uniform is None else uniform
        row = {
            "close_and_notice_s": round(seconds, 3),
            "ratio_to_uniform": round(seconds / uniform, 2),
            "computing_s": round(float(close["steps_s"].get("computing", 0.0)), 3),
            "members": close["members"],
            "cases": close["cases"],
            "share_fen": close["share_fen"],
            "total_charged_fen": close["total_charged_fen"],
            "peak_rss_mb": round(float(close["peak_rss_mb"]), 1),
            "load_average_before_after": close["load_average_before_after"],
        }
        results["rules"][rule] = row
        say(f"{rule:>18}: {row['close_and_notice_s']:8.3f} s  × {row['ratio_to_uniform']:.2f}")
    say(json.dumps(results))


if __name__ == "__main__":
    main()
