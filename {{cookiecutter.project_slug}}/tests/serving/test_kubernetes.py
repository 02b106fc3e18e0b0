"""The Kubernetes manifests (k8s/): valid against Kubernetes' own schemas, offline and strict (an
unknown field is an error: kubernetes-validate), a misspelt or mistyped field caught; they probe
the server's /ready and /health on the port the image exposes, run the image's own command, take
the admin token from a Secret, and their names and labels agree with one another."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.serving

MANIFESTS = Path.cwd() / "k8s"
KUBERNETES = "1.33.0"  # the schemas checked against (kubernetes-validate bundles them)


def documents() -> dict[str, dict]:
    """Kind -> manifest, from every file in k8s/."""
    found = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


def problems(document: dict) -> list[str]:
    try:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"{'.'.join(str(part) for part in err.path)}: {err.message}"]
    return []


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    return documents()


def container(manifests: dict[str, dict]) -> dict:
    [server] = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return server


def test_every_manifest_is_valid_for_kubernetes(manifests):
    assert set(manifests) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    assert {kind: problems(document) for kind, document in manifests.items()} == {
        kind: [] for kind in manifests
    }


def test_a_misspelt_or_mistyped_field_is_caught(manifests):
    misspelt = yaml.safe_load(yaml.safe_dump(manifests["Deployment"]))
    server = misspelt["spec"]["template"]["spec"]["containers"][0]
    server["readinesProbe"] = server.pop("readinessProbe")
    assert problems(misspelt) and "readinesProbe" in problems(misspelt)[0]
    mistyped = yaml.safe_load(yaml.safe_dump(manifests["Service"]))
    mistyped["spec"]["ports"][0]["port"] = "eighty"
    assert problems(mistyped)


def test_the_probes_ask_the_servers_own_endpoints_on_the_port_it_exposes(manifests, app_for, served):
    server = container(manifests)
    exposed = re.search(r"^EXPOSE (\d+)$", (Path.cwd() / "Dockerfile").read_text(), flags=re.M)
    assert exposed and [port["containerPort"] for port in server["ports"]] == [int(exposed[1])]
    routes = {route.path for route in app_for(served).routes}
    assert server["readinessProbe"]["httpGet"]["path"] == "/ready" in routes
    assert server["livenessProbe"]["httpGet"]["path"] == "/health" in routes
    named = {port["name"] for port in server["ports"]}
    assert {server["readinessProbe"]["httpGet"]["port"], server["livenessProbe"]["httpGet"]["port"]} <= named
    assert manifests["Service"]["spec"]["ports"][0]["targetPort"] in named
    assert "requests" in server["resources"] and "memory" in server["resources"]["limits"]


def test_the_container_runs_the_images_command_with_the_token_from_a_secret(manifests):
    server = container(manifests)
    assert "command" not in server and "args" not in server, "the Dockerfile's CMD is the one command"
    tokens = [variable for variable in server["env"] if variable["name"].endswith("_TOKEN")]
    assert tokens and all(
        "value" not in variable and "secretKeyRef" in variable["valueFrom"] for variable in tokens
    )


def test_names_and_labels_agree(manifests):
    deployment = manifests["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifests["Service"]["spec"]["selector"].items() <= labels.items()
    target = manifests["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
