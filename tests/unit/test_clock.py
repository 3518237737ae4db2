"""One clock: the platform reads time through ``decisioning.core.events.utc_now`` and tests never
read the calendar (issue 23: a test that moved with the calendar turned ``make test`` red)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = ["decisioning", "pipelines", "registry", "bentos", "feature_repo", "bench"]
# Reading the wall clock directly, in any of the spellings the stack offers.
WALL_CLOCK = re.compile(
    r"\b(datetime\.(now|utcnow|today)|Timestamp\.(now|utcnow|today)|date\.today|time\.time)\("
)
# The one place the platform reads it; a line may also say why it must compare with another
# process's real clock (a Prometheus server's scrape times, say) by carrying this mark.
THE_CLOCK = ROOT / "decisioning" / "core" / "events.py"
EXEMPT = "# wall clock:"


def wall_clock_reads(path: Path, pattern: re.Pattern[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line) and EXEMPT not in line
    ]


@pytest.mark.parametrize("package", CODE)
def test_code_reads_time_only_through_the_platform_clock(package: str) -> None:
    found = [
        read
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != THE_CLOCK
        for read in wall_clock_reads(path, WALL_CLOCK)
    ]

    assert not found, "read the time through decisioning.core.events.utc_now:\n" + "\n".join(found)


def test_tests_take_their_dates_from_tests_clock() -> None:
    # utc_now() in a test is the calendar too: worlds start on fixed days, "now" is
    # tests.support.clock.NOW
    pattern = re.compile(WALL_CLOCK.pattern + r"|\butc_now\(")
    allowed = {ROOT / "tests" / "clock_site" / "sitecustomize.py", Path(__file__).resolve()}
    found = [
        read
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path not in allowed
        for read in wall_clock_reads(path, pattern)
    ]

    assert not found, (
        "use tests.support.clock (NOW, at_now, fixed_now, a fixed start):\n" + "\n".join(found)
    )
