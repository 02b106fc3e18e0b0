"""Values from people, make and workflows are validated before any command uses them."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.commands.runner import step_outputs

pytestmark = pytest.mark.unit

# Shell payloads: none of them is a version, a ref or a server address.
SHELL_PAYLOADS = ["1; id", "1`id`", "$(id)", "1'; id; '", '1"; id; "', "1 && id", "1\nid", "1\n"]
PAYLOADS = [*SHELL_PAYLOADS, "-1", "v1", "", " 1"]


@pytest.mark.parametrize("command", ["promote", "rollback"])
@pytest.mark.parametrize("payload", [p for p in PAYLOADS if p])
def test_a_version_is_a_number(command, payload, capsys):
    assert main([command, f"--version={payload}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --version ") and err.count("\n") == 1, err
    assert "is not a version" in err


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if p] + ["file:///etc/passwd", "http://h/x?y=1"])
def test_a_reload_address_is_http_host_and_port(payload, capsys):
    assert main(["rollback", "--version=previous", f"--reload={payload}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --reload ") and err.count("\n") == 1, err


def test_the_checks_let_good_values_through():
    from {{ cookiecutter.package_name }}.commands.values import checked_ref, checked_urls, checked_version

    assert checked_version("12") == "12" and checked_version("previous", allow_previous=True) is None
    assert checked_version(None) is None
    assert checked_urls(["http://127.0.0.1:8000", "https://serve.example.com/"])
    for ref in ("main", "origin/main", "release/1.2", "HEAD~1", "v1.0.0", "0" * 40, "feature_x-2"):
        assert checked_ref(ref) == ref


@pytest.mark.parametrize("payload", [*SHELL_PAYLOADS, "a b", "x=y"])
def test_a_step_output_is_one_plain_word(payload):
    """A line break in a value would let it set another output of the step."""
    with pytest.raises(ValueError, match="expected letters, digits"):
        step_outputs({"verdict": payload})
    assert step_outputs({"verdict": "alert", "retrain": "false"}) == "verdict=alert\nretrain=false\n"
