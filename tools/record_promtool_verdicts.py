"""Rewrite tests/rules/promtool-verdicts.json: promtool's verdict on every case of tests/rules/.

    SPECC_PROMTOOL=/path/to/promtool python3 tools/record_promtool_verdicts.py

promtool 3 can be built from the Go module proxy:
    GOBIN=/tmp/promtool go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import promtool


def main() -> None:
    tool, version = promtool.find_promtool()
    if tool is None:
        sys.exit(version)
    promtool.record(tool, version)
    print(promtool.RECORDED)


if __name__ == "__main__":
    main()
