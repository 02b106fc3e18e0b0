"""Prometheus for real: the shipped alerting rules pass their promtool unit tests (and a broken
rule fails them), every query of the rules and the Grafana dashboard names a metric the server or
the monitor exports (a misspelt one is named), and a real Prometheus scraping a real server fires
the alert for injected errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from serving_helpers import start_server, stop

from {{ cookiecutter.package_name }}.deploy.servers import free_port, request
from {{ cookiecutter.package_name }}.monitoring.gauges import as_prometheus
from {{ cookiecutter.package_name }}.monitoring.verdict import Check
from {{ cookiecutter.package_name }}.serving.metrics import ServerMetrics

pytestmark = pytest.mark.serving

MONITORING = Path.cwd() / "monitoring"
FIRING_WITHIN = 60.0  # seconds for Prometheus to scrape, evaluate and fire (it scrapes every second here)
# PromQL words that are not metric names.
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
}


@pytest.fixture(scope="module")
def binaries(unavailable) -> dict[str, str]:
    found = {name: shutil.which(name) for name in ("promtool", "prometheus")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        unavailable(f"{', '.join(missing)} not installed (Debian/Ubuntu: apt-get install prometheus)")
    return {name: str(path) for name, path in found.items()}


def promtool_test(promtool: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"], cwd=folder, capture_output=True, text=True, timeout=60
    )


def test_the_shipped_rules_pass_their_unit_tests(binaries):
    checked = subprocess.run(
        [binaries["promtool"], "check", "rules", "alerts.yml"], cwd=MONITORING, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool_test(binaries["promtool"], MONITORING)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_rule_that_misses_its_fault_fails_the_unit_tests(binaries, tmp_path):
    for name in ("alerts.yml", "alerts.test.yml"):
        shutil.copy(MONITORING / name, tmp_path / name)
    rules = tmp_path / "alerts.yml"
    rules.write_text(
        rules.read_text().replace(
            "/ sum(rate(predict_requests_total[5m])) > 0.01", "/ sum(rate(predict_requests_total[5m])) > 0.5"
        )
    )
    tested = promtool_test(binaries["promtool"], tmp_path)
    assert tested.returncode != 0 and "ModelServerErrors" in tested.stdout + tested.stderr


# --- every query names an exported metric -------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: its identifiers, without functions, keywords,
    label matchers, grouping labels, durations and strings."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # grouping
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()[:1]
        before = expr[: match.start()]
        if following == "(" or match.group() in KEYWORDS or re.search(r"[0-9.]$", before):
            continue
        names.add(match.group())
    return names


def exported(text: str) -> set[str]:
    """The series names a Prometheus text exposition holds, from its TYPE lines (a histogram `x` is
    `x_bucket`, `x_sum` and `x_count`; a counter's TYPE line names it with `_total` already)."""
    suffixes = {"histogram": ["_bucket", "_sum", "_count"]}
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= {name + suffix for suffix in suffixes.get(kind, [""])}
    return names


def queries() -> dict[str, str]:
    """Every PromQL expression shipped: the alerting rules' and the dashboard's panels'."""
    found = {}
    for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    for panel in json.loads((MONITORING / "dashboard.json").read_text())["panels"]:
        for target in panel["targets"]:
            found[f"panel {panel['title']}"] = target["expr"]
    return found


def unknown_metrics(shipped: dict[str, str], known: set[str]) -> dict[str, set[str]]:
    return {where: names - known for where, expr in shipped.items() if (names := metric_names(expr)) - known}


@pytest.fixture(scope="module")
def known() -> set[str]:
    server, _ = ServerMetrics().text()
    return exported(server.decode()) | exported(as_prometheus([Check("drift: x", "", "", True)], 0.0))


def test_every_shipped_query_names_a_metric_the_server_or_the_monitor_exports(known):
    shipped = queries()
    assert len(shipped) >= 15
    assert unknown_metrics(shipped, known) == {}
    read = set().union(*(metric_names(expr) for expr in shipped.values()))
    assert {"predict_requests_total", "predict_latency_seconds_bucket", "monitor_check_alert"} <= read


def test_a_misspelt_metric_is_named(known):
    shipped = {"panel typo": "sum(rate(predict_request_total[5m])) / sum(rate(predict_rows_total[5m]))"}
    assert unknown_metrics(shipped, known) == {"panel typo": {"predict_request_total"}}
    assert metric_names('histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[5m]))) > 0.05') == {
        "x_bucket"
    }


def test_the_monitors_gauges_parse_with_any_check_name():
    from prometheus_client.parser import text_string_to_metric_families

    checks = [Check('drift: a "quoted"\\name\nnext', "", "", False), Check("model age", "", "", True)]
    checks.append(Check("online accuracy: version 3", "not judged", "", None))  # not judged: absent
    families = {family.name: family for family in text_string_to_metric_families(as_prometheus(checks, 5.0))}
    samples = [(sample.labels, sample.value) for sample in families["monitor_check_alert"].samples]
    assert samples == [
        ({"check": 'drift: a "quoted"\\name\nnext', "kind": "drift"}, 1.0),
        ({"check": "model age", "kind": "age"}, 0.0),
    ]
    assert families["monitor_alert"].samples[0].value == 1.0
    assert families["monitor_run_timestamp_seconds"].samples[0].value == 5.0


# --- a real Prometheus, a real server -------------------------------------------------------------


def prometheus_config(folder: Path, target: str) -> Path:
    """A config scraping `target` every second, with the shipped rules at `for: 0s`."""
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "0s"  # a test copy: the shipped rules keep realistic durations
    (folder / "rules.yml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(folder / "rules.yml")],
        "scrape_configs": [{"job_name": "model", "static_configs": [{"targets": [target]}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    return folder / "prometheus.yml"


def alerts(url: str) -> dict[str, str]:
    """Alert name -> state (pending, firing), as Prometheus reports them now."""
    try:
        with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=2) as answer:
            found = json.load(answer)["data"]["alerts"]
    except OSError:
        return {}
    return {alert["labels"]["alertname"]: alert["state"] for alert in found}


def scraped(url: str) -> bool:
    query = urllib.parse.quote('predict_requests_total{status="200"}')
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?query={query}", timeout=2) as answer:
            return bool(json.load(answer)["data"]["result"])
    except OSError:
        return False


def until(condition, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within:g} s")
        time.sleep(0.5)


def test_prometheus_fires_the_alert_for_injected_errors(binaries, model_dir, rows, tmp_path):
    server = start_server(Path.cwd(), model_dir, tmp_path / "server.log")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        binaries["prometheus"],
        f"--config.file={prometheus_config(tmp_path, server.url.removeprefix('http://'))}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (tmp_path / "prometheus.log").open("w") as sink:
        prometheus = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        for row in rows:
            assert request(server.url, "POST", "/predict", row)[0] == 200
        until(lambda: scraped(url), FIRING_WITHIN, "Prometheus scraped the server")
        time.sleep(3)  # a few evaluations of healthy traffic
        assert "ModelInvalidInputs" not in alerts(url), "it fired on healthy traffic"
        deadline = time.monotonic() + FIRING_WITHIN
        while alerts(url).get("ModelInvalidInputs") != "firing":  # inject: rows the contract refuses
            if time.monotonic() > deadline or prometheus.poll() is not None:
                pytest.fail(
                    f"ModelInvalidInputs did not fire:\n{(tmp_path / 'prometheus.log').read_text()[-2000:]}"
                )
            for row in rows:
                assert request(server.url, "POST", "/predict", {**row, "unheard_of": 1})[0] == 422
            time.sleep(0.5)
        assert "ModelServerErrors" not in alerts(url)  # refused requests are the client's errors
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()
        stop(server)
