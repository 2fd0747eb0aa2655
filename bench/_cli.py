"""Command line: pick suites, run them, print JSON or tables; progress goes to stderr."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench._log import log
from bench._suite import run_suite
from bench.suites import SUITES

__all__ = ["main"]

ALL = "all"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark loopml against its peers, side by side, on fresh stores.",
        epilog="suites: "
        + "; ".join(f"{name}: {suite.summary} (vs {suite.peer})" for name, suite in SUITES.items()),
    )
    parser.add_argument("suite", choices=[*SUITES, ALL], help="suite to run, or 'all'")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply workload sizes (e.g. 0.1 for a quick smoke run; goals assume 1.0)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds each side may run (default 1800)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a goal is missed too"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites; exit 1 on errors (or, with --check, on a missed goal)."""
    args = _parser().parse_args(argv)
    if args.scale <= 0:
        _parser().error(f"--scale must be greater than 0; got {args.scale}")
    names = list(SUITES) if args.suite == ALL else [args.suite]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.perf_counter()
        results[name] = run_suite(SUITES[name], scale=args.scale, timeout_s=args.timeout)
        log(f"{name}: finished in {time.perf_counter() - started:.1f} s")
    if args.json:
        document = results if args.suite == ALL else results[args.suite]
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from bench._report import print_tables  # rich only when a table is asked for

        print_tables(results, SUITES)
    failed = any(result["errors"] for result in results.values())
    missed = not all(result["meets_goals"] for result in results.values())
    return 1 if failed or (args.check and missed) else 0
