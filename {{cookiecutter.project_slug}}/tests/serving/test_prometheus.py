"""Prometheus for real: the shipped alerting rules pass their promtool unit tests (and a broken
rule fails them), every query of the rules and the Grafana dashboard names a metric the server or
the monitor exports (a misspelt one is named), a real Prometheus scraping a real server fires
the alert for injected errors, and one scraping a real Pushgateway fires the drift alert the
monitor's pushed gauges call for."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from serving_helpers import start_server, stop

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config.settings import load_settings
from {{ cookiecutter.package_name }}.deploy.servers import free_port, request
from {{ cookiecutter.package_name }}.monitoring.gauges import as_prometheus
from {{ cookiecutter.package_name }}.monitoring.push import JOB, PushError
from {{ cookiecutter.package_name }}.monitoring.push import target as gateway_target
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


@contextlib.contextmanager
def running_prometheus(binary: str, config: Path, folder: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real Prometheus on 127.0.0.1 with `config` while in the block: its address and process."""
    port = free_port()
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (folder / "prometheus.log").open("w") as sink:
        prometheus = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", prometheus
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()


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
    config = prometheus_config(tmp_path, server.url.removeprefix("http://"))
    try:
        with running_prometheus(binaries["prometheus"], config, tmp_path) as (url, prometheus):
            for row in rows:
                assert request(server.url, "POST", "/predict", row)[0] == 200
            until(lambda: scraped(url), FIRING_WITHIN, "Prometheus scraped the server")
            time.sleep(3)  # a few evaluations of healthy traffic
            assert "ModelInvalidInputs" not in alerts(url), "it fired on healthy traffic"
            deadline = time.monotonic() + FIRING_WITHIN
            while alerts(url).get("ModelInvalidInputs") != "firing":  # inject: rows the contract refuses
                if time.monotonic() > deadline or prometheus.poll() is not None:
                    said = (tmp_path / "prometheus.log").read_text()[-2000:]
                    pytest.fail(f"ModelInvalidInputs did not fire:\n{said}")
                for row in rows:
                    assert request(server.url, "POST", "/predict", {**row, "unheard_of": 1})[0] == 422
                time.sleep(0.5)
            assert "ModelServerErrors" not in alerts(url)  # refused requests are the client's errors
    finally:
        stop(server)


# --- the monitor's gauges through a real Pushgateway ----------------------------------------------


def test_the_gateway_address_is_checked_and_its_password_never_shown():
    to = gateway_target("https://ops:p%40ss@gw.example:9091/base/", "churn/v2")
    encoded = base64.urlsafe_b64encode(b"churn/v2").decode()
    assert to.url == f"https://gw.example:9091/base/metrics/job/{JOB}/model@base64/{encoded}"
    assert to.headers["Authorization"] == "Basic " + base64.b64encode(b"ops:p@ss").decode()
    assert to.shown == "https://gw.example:9091/base"
    assert "Authorization" not in gateway_target("http://127.0.0.1:9091", "m").headers
    for wrong in (
        "ftp://ops:secret@gw:21",
        "http://",
        "http://ops:secret@gw:99999",
        "http://gw:9091/?x=1",
        "gw:9091",
    ):
        with pytest.raises(PushError) as refused:
            gateway_target(wrong, "m")
        assert "secret" not in str(refused.value) and "expected" in str(refused.value), wrong


@pytest.fixture
def pushgateway(unavailable, tmp_path) -> Iterator[str]:
    """A real Pushgateway on 127.0.0.1, stopped after the test: its address."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        unavailable(
            "prometheus-pushgateway not installed (Debian/Ubuntu: apt-get install prometheus-pushgateway)"
        )
    port = free_port()
    command = [
        str(binary),
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={tmp_path / 'pushgateway.data'}",
        "--log.level=warn",
    ]
    with (tmp_path / "pushgateway.log").open("w") as sink:
        gateway = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: answers(f"{url}/-/ready") or gateway.poll() is not None, 30, "the Pushgateway started")
        assert gateway.poll() is None, (tmp_path / "pushgateway.log").read_text()
        yield url
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def pushed(gateway: str) -> list[tuple[dict, float]]:
    """The monitor_check_alert samples the gateway holds: (labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == "monitor_check_alert"
        for sample in family.samples
    ]


def push_gauges(checks: list[Check], folder: Path, url: str) -> int:
    gauges = folder / "monitor.prom"
    gauges.write_text(as_prometheus(checks, time.time()))
    return main(["--root", str(Path.cwd()), "push-gauges", str(gauges), "--url", url])


def test_prometheus_fires_the_drift_alert_from_the_gauges_pushed_to_a_gateway(
    binaries, pushgateway, tmp_path, capsys
):
    model = load_settings(Path.cwd() / "params.yaml").mlflow.registered_model
    drifted = [Check("drift: plan", "", "", False), Check("model age", "", "", True)]
    assert push_gauges(drifted, tmp_path, pushgateway) == 0, capsys.readouterr().err
    group = {"job": JOB, "model": model, "instance": ""}  # the gateway adds an empty instance
    assert pushed(pushgateway) == [
        (group | {"check": "drift: plan", "kind": "drift"}, 1.0),
        (group | {"check": "model age", "kind": "age"}, 0.0),
    ]
    config = prometheus_config(tmp_path, pushgateway.removeprefix("http://"))
    settings = yaml.safe_load(config.read_text())
    settings["scrape_configs"][0]["honor_labels"] = True  # the pushed job and model labels, as documented
    config.write_text(yaml.safe_dump(settings))
    with running_prometheus(binaries["prometheus"], config, tmp_path) as (url, _):
        until(lambda: alerts(url).get("ModelDrift") == "firing", FIRING_WITHIN, "ModelDrift fired")
        assert "ModelStale" not in alerts(url)
    # The next verdict replaces the group: a check judged no more leaves no stale gauge.
    assert push_gauges([Check("drift: plan", "", "", True)], tmp_path, pushgateway) == 0
    assert pushed(pushgateway) == [(group | {"check": "drift: plan", "kind": "drift"}, 0.0)]


def test_a_push_that_fails_is_one_line_and_exit_1(pushgateway, tmp_path, capsys, monkeypatch):
    checks = [Check("drift: plan", "", "", False)]
    nobody = f"http://ops:secret@127.0.0.1:{free_port()}"
    refusals = {
        "nothing listens": (lambda: push_gauges(checks, tmp_path, nobody), "no Pushgateway answered"),
        "bad gauges": (
            lambda: main(
                ["--root", str(Path.cwd()), "push-gauges", str(spoilt(tmp_path)), "--url", pushgateway]
            ),
            "refused the gauges (HTTP 400",
        ),
        "no file": (
            lambda: main(
                [
                    "--root",
                    str(Path.cwd()),
                    "push-gauges",
                    str(tmp_path / "absent.prom"),
                    "--url",
                    pushgateway,
                ]
            ),
            "not found: `make monitor` writes it",
        ),
    }
    for fault, (run, said) in refusals.items():
        assert run() == 1, fault
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and said in err and "Traceback" not in err, (fault, err)
        assert "secret" not in err, fault
    assert pushed(pushgateway) == []  # nothing reached the gateway
    monkeypatch.delenv("PUSHGATEWAY_URL", raising=False)
    assert main(["--root", str(Path.cwd()), "push-gauges", str(tmp_path / "absent.prom")]) == 0
    assert "nothing sent" in capsys.readouterr().out


def spoilt(folder: Path) -> Path:
    gauges = folder / "spoilt.prom"
    gauges.write_text("# TYPE monitor_alert gauge\nmonitor_alert one\n")
    return gauges
