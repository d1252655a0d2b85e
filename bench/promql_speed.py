"""PromQL analysis: specc's parser against promql-parser (Rust, if installed) and promtool.

    .venv/bin/python bench/promql_speed.py [--promtool PATH] [--runs 5]

Expressions of 0.16 to 32 KB (one real-looking rule repeated with `or`), each parsed
by specc.promql.check in this process; promql-parser (`pip install promql-parser`,
no longer a dependency) parses and walks the same text in this process; promtool
checks a rule file holding the expression (one process per run, its start-up
included and also shown apart). Then the hostile shapes of issue 18: nesting and
size over specc's bounds, with time and the process's peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from specc.promql import check

BASE = (
    'sum by (namespace, service) (rate(http_requests_total{job="web", code=~"5.."}[5m]))'
    ' / sum by (namespace, service) (rate(http_requests_total{job="web"}[5m])) > 0.05'
)


def median_seconds(fn, text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def promql_parser_fn():
    try:
        import promql_parser
    except ImportError:
        return None

    def parse_and_walk(text: str) -> None:
        promql_parser.walk(promql_parser.parse(text), lambda node: None)

    return parse_and_walk


def promtool_fn(promtool: str):
    def run(text: str) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            import json

            f.write(
                f"groups:\n  - name: g\n    rules:\n      - record: x:y\n        expr: {json.dumps(text)}\n"
            )
        subprocess.run([promtool, "check", "rules", f.name], capture_output=True, check=False)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--promtool")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    check(BASE)
    peers = {}
    if (fn := promql_parser_fn()) is not None:
        fn(BASE)
        peers["promql-parser"] = fn
    if args.promtool:
        peers["promtool"] = promtool_fn(args.promtool)
        start = median_seconds(peers["promtool"], "up", args.runs)
        print(f"promtool check rules on `up` (process start-up and all): {start * 1e3:.1f} ms")
    print(f"{'chars':>7} {'specc':>10}" + "".join(f" {name:>14} {'ratio':>7}" for name in peers))
    for terms in (1, 4, 16, 64, 190):
        text = " or ".join([f"({BASE})"] * terms)
        ours = median_seconds(check, text, args.runs)
        line = f"{len(text):7d} {ours * 1e3:8.2f}ms"
        for fn in peers.values():
            theirs = median_seconds(fn, text, max(1, args.runs if len(text) < 3000 else 1))
            line += f" {theirs * 1e3:12.2f}ms {theirs / ours:6.1f}x"
        print(line, flush=True)
    print("\nhostile shapes (specc.promql.check):")
    hostile = {
        "10,000 unary minuses": "-" * 10_000 + "up",
        "5,000 `or` terms": " or ".join(["up"] * 5_000),
        "12,000 parentheses": "(" * 12_000 + "up" + ")" * 12_000,
        "50 KB expression": "sum("
        + " + ".join(['rate(http_requests_total{job="web"}[5m])'] * 1_300)
        + ")",
    }
    for name, text in hostile.items():
        start = time.perf_counter()
        problem = check(text)
        took = time.perf_counter() - start
        assert problem is not None
        print(f"  {name:<22} {len(text):6d} chars {took * 1e3:7.2f} ms  -> {problem.message}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
