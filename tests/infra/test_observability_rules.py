"""Alert rules and dashboards: valid for promtool, and reading only metrics the code exposes.

A dashboard or alert on a misspelt metric shows nothing and never fires; these tests make that a
failure here instead of a silent gap in production.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from decisioning.telemetry.metrics import exposed_names
from infra.alerts import DEFAULT_RUNBOOK_BASE_URL, JOB_GAUGE, render
from infra.image import METRICS_JOB, SCHEDULED_JOBS

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "infra" / "prometheus").glob("*.y*ml"))
DASHBOARDS = sorted((REPO / "infra" / "grafana").glob("*.json"))
RUNBOOK = REPO / "docs" / "runbook.md"
PROMTOOL_TESTS = sorted((Path(__file__).parent / "promtool").glob("*_test.yml"))
# Series Prometheus makes itself for every scrape target.
PROMETHEUS_SERIES = {"up"}
PROMTOOL_MISSING = (
    "promtool not installed: add `apt-get install -y --no-install-recommends prometheus` to .ci/run"
)
# Words PromQL uses that look like metric names: functions are followed by "(", these are not.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_KEYWORDS |= {"and", "or", "unless", "offset", "inf", "nan"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels or keywords)."""
    bare = _STRINGS.sub('""', expr)
    for pattern in (_MATCHERS, _GROUPING, _RANGES):
        bare = pattern.sub(" ", bare)
    return {name for name in _IDENTIFIER.findall(bare) if name.lower() not in _KEYWORDS}


def rules() -> list[dict[str, object]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def dashboard_exprs() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            found += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel["targets"]]
    return found


def test_the_metric_name_parser_ignores_functions_labels_and_ranges() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route="/v1"}[5m]))) '
        "/ on (route) group_left b_total > bool 0.5"
    )

    assert metric_names(expr) == {"a_bucket", "b_total"}


def test_rules_and_dashboards_exist() -> None:
    assert RULE_FILES, "no alert rules in infra/prometheus"
    assert len(DASHBOARDS) >= 2, "expected the service and model-monitoring dashboards"


@pytest.mark.parametrize(
    ("where", "expr"),
    [(str(rule["alert"]), str(rule["expr"])) for rule in rules()] + dashboard_exprs(),
)
def test_every_expression_reads_only_metrics_the_code_defines(where: str, expr: str) -> None:
    names = metric_names(expr)

    assert names, f"{where}: no metric in {expr!r}"
    unknown = names - exposed_names() - PROMETHEUS_SERIES
    assert not unknown, (
        f"{where}: {sorted(unknown)} not defined in decisioning/telemetry/metrics.py"
    )


def test_dashboards_cover_what_the_issue_asks_for() -> None:
    exprs = " ".join(expr for _, expr in dashboard_exprs())

    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in exprs, f"no p{quantile} latency panel"
    for metric in (
        "risk_request_errors_total",
        "risk_feature_drift_score",
        "risk_decisions_total",
        "risk_degraded_decisions_total",
        "risk_flag_precision",
    ):
        assert metric in exprs, f"no panel reads {metric}"


def test_every_alert_has_a_runbook_section() -> None:
    headings = {
        line.lstrip("#").strip().lower()
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }

    for rule in rules():
        alert = str(rule["alert"])
        assert alert.lower() in headings, f"docs/runbook.md has no '## {alert}' section"
        url = str(rule["annotations"]["runbook_url"])  # type: ignore[index]
        assert url == f"{DEFAULT_RUNBOOK_BASE_URL}#{alert.lower()}", f"{alert}: {url}"
        assert rule["labels"]["severity"] in {"page", "ticket"}  # type: ignore[index]


@pytest.mark.skipif(shutil.which("promtool") is None, reason=PROMTOOL_MISSING)
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_committed_rules_are_what_the_generator_writes_for_the_default_base_url() -> None:
    committed = (REPO / "infra" / "prometheus" / "alerts.yml").read_text()

    assert committed == render(DEFAULT_RUNBOOK_BASE_URL), (
        "infra/prometheus/alerts.yml is stale: edit alerts.yml.in, then `python -m infra.alerts`"
    )


def test_runbook_links_follow_the_configured_base_url() -> None:
    rendered = yaml.safe_load(render("https://wiki.example.org/ops/risk/"))
    urls = [
        rule["annotations"]["runbook_url"]
        for group in rendered["groups"]
        for rule in group["rules"]
    ]

    assert urls and all(url.startswith("https://wiki.example.org/ops/risk#") for url in urls)
    with pytest.raises(ValueError, match="absolute"):
        render("docs/runbook.md")


def test_each_scheduled_job_has_a_late_and_an_absent_rule_at_twice_its_period() -> None:
    by_job: dict[str, dict[str, str]] = {}
    for rule in rules():
        job = rule["labels"].get("job")  # type: ignore[union-attr]
        if JOB_GAUGE in str(rule["expr"]):
            by_job.setdefault(str(job), {})[str(rule["alert"])] = str(rule["expr"])

    assert set(by_job) == {job.name for job in SCHEDULED_JOBS}
    for job in SCHEDULED_JOBS:
        selector = f'{JOB_GAUGE}{{job="{job.name}"}}'
        late = by_job[job.name]["RiskJobLate"]
        assert selector in late and late.endswith(f"> {2 * job.period_seconds}"), late
        assert by_job[job.name]["RiskJobGaugeAbsent"] == f"absent({selector})"


def test_the_service_has_up_and_absent_rules() -> None:
    exprs = {str(rule["alert"]): str(rule["expr"]) for rule in rules()}

    assert exprs["RiskServiceDown"] == f'up{{job="{METRICS_JOB}"}} == 0'
    assert exprs["RiskServiceAbsent"] == f'absent(up{{job="{METRICS_JOB}"}})'


@pytest.mark.skipif(shutil.which("promtool") is None, reason=PROMTOOL_MISSING)
@pytest.mark.parametrize("unit_tests", PROMTOOL_TESTS, ids=lambda path: path.name)
def test_promtool_unit_tests_of_the_rules_pass(unit_tests: Path) -> None:
    # given series and evaluation times in the file; then each alert fires exactly as expected
    result = subprocess.run(
        ["promtool", "test", "rules", unit_tests.name],
        cwd=unit_tests.parent,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
