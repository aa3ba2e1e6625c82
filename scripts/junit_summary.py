"""Add up pytest JUnit XML reports into one closing line, and fail on an empty or bad run.

pytest exits 5 when it collects nothing, but a report can also be missing (a crashed run) or
hold only skipped tests; CI must not count any of those as a pass. Usage:

    python scripts/junit_summary.py [--no-skips] REPORT.xml [REPORT.xml ...]

Prints `total: N passed, N failed, N skipped` and exits 1 when a report is missing or empty,
when anything failed or errored, or (with --no-skips, as CI uses it) when anything skipped.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Counts:
    tests: int = 0
    failed: int = 0  # failures and errors together: both mean the run is red
    skipped: int = 0

    @property
    def passed(self) -> int:
        return self.tests - self.failed - self.skipped

    def add(self, other: Counts) -> None:
        self.tests += other.tests
        self.failed += other.failed
        self.skipped += other.skipped


def read_report(path: Path) -> Counts:
    """Counts of one JUnit XML file (a <testsuites> root or a single <testsuite>)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = Counts()
    for suite in suites:
        counts.add(
            Counts(
                tests=int(suite.get("tests", 0)),
                failed=int(suite.get("failures", 0)) + int(suite.get("errors", 0)),
                skipped=int(suite.get("skipped", 0)),
            )
        )
    return counts


def summarise(paths: list[Path], *, no_skips: bool) -> tuple[Counts, list[str]]:
    """Total counts over `paths` and the reasons (possibly none) the run is not a pass."""
    total = Counts()
    problems: list[str] = []
    for path in paths:
        if not path.is_file():
            problems.append(f"{path}: no report (the test run did not finish)")
            continue
        counts = read_report(path)
        total.add(counts)
        if counts.tests == 0:
            problems.append(f"{path}: no test ran")
        if counts.failed:
            problems.append(f"{path}: {counts.failed} failed")
        if no_skips and counts.skipped:
            problems.append(f"{path}: {counts.skipped} skipped (a skip is not a pass in CI)")
    return total, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--no-skips", action="store_true", help="count skipped tests as failures")
    args = parser.parse_args(argv)
    total, problems = summarise(args.reports, no_skips=args.no_skips)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print(f"total: {total.passed} passed, {total.failed} failed, {total.skipped} skipped")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
