"""The gate's policy: what may not get worse (gate), absolute bounds (thresholds), canary bounds.

A pull request is judged with the policy of its base branch, never its own: a PR that
loosens a tolerance would otherwise pass itself. A PR that changes the policy has the
change shown in its report; its own policy applies only when someone other than its
author approves it, by adding the label `APPROVAL_LABEL` (the run that label starts
judges with the new policy; a later push needs the label again).

The loader reads only the policy's sections of params.yaml and gives every key that
a newer template added its default, so an older base branch still loads.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config.canary import CanarySettings
from ..config.evaluate import EvaluateSettings, Threshold
from ..config.gate import GateSettings
from ..config.reading import ConfigError, parse_params

APPROVAL_LABEL = "gate-policy-approved"
MIN_GROUP_SIZE = EvaluateSettings.model_fields["min_group_size"].default
PARAMS_FILE = "params.yaml"


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gate: GateSettings
    thresholds: dict[str, Threshold] = {}  # params.yaml: evaluate.thresholds
    # params.yaml: evaluate.min_group_size; a group below it is too small to judge
    min_group_size: int = Field(default=MIN_GROUP_SIZE, ge=1)
    canary: CanarySettings = CanarySettings()


@dataclass(frozen=True)
class Approval:
    approved: bool
    by: str | None = None
    note: str = ""  # why it is (not) approved, for the report


@dataclass(frozen=True)
class PolicyChange:
    key: str  # dotted, as in params.yaml
    base: object
    proposed: object


@dataclass(frozen=True)
class PolicyNote:
    """The pull request changes the policy: what, and whether its version was applied."""

    changes: list[PolicyChange]
    approval: Approval

    @property
    def applied(self) -> bool:
        return bool(self.changes) and self.approval.approved


def policy_from_params(raw: object, source: str) -> Policy:
    """The policy sections of parsed params.yaml; errors name the file and the dotted key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: not a mapping of settings")
    section = raw.get("evaluate")
    evaluate = section if isinstance(section, dict) else {}
    picked = {"gate": raw.get("gate"), "thresholds": evaluate.get("thresholds") or {}}
    if raw.get("canary") is not None:
        picked["canary"] = raw["canary"]
    if evaluate.get("min_group_size") is not None:
        picked["min_group_size"] = evaluate["min_group_size"]
    try:
        return Policy.model_validate(picked)
    except ValidationError as err:
        first = err.errors()[0]
        parts = [str(part) for part in first["loc"]]
        if parts and parts[0] in ("thresholds", "min_group_size"):
            parts = ["evaluate", *parts]
        raise ConfigError(f"{source}: {'.'.join(parts)}: {first['msg']}") from None


def parse_policy(text: str, source: str) -> Policy:
    return policy_from_params(parse_params(text, source), source)


def read_policy(root: Path, revision: str | None) -> Policy:
    """The policy in params.yaml at a git revision, or in the working tree (`revision` None)."""
    if revision is None:
        path = root / PARAMS_FILE
        try:
            return parse_policy(path.read_text(encoding="utf-8"), PARAMS_FILE)
        except OSError as err:
            raise ConfigError(f"{PARAMS_FILE}: cannot be read ({err.strerror})") from None
    source = f"{PARAMS_FILE} at {revision}"
    # `rev:./path` is relative to the project folder, which may sit below the repository's top.
    result = subprocess.run(
        ["git", "show", "--end-of-options", f"{revision}:./{PARAMS_FILE}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        reason = " ".join(result.stderr.split()) or f"git exit {result.returncode}"
        raise ConfigError(f"{source}: cannot be read ({reason})")
    return parse_policy(result.stdout, source)


def policy_changes(base: Policy, proposed: Policy) -> list[PolicyChange]:
    """Every dotted key whose value differs, as params.yaml names it."""
    old, new = _flat(_as_params(base)), _flat(_as_params(proposed))
    return [
        PolicyChange(key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def _as_params(policy: Policy) -> dict:
    dumped = policy.model_dump(exclude_none=True)
    return {
        "gate": dumped["gate"],
        "evaluate": {"thresholds": dumped["thresholds"], "min_group_size": dumped["min_group_size"]},
        "canary": dumped["canary"],
    }


def _flat(tree: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(tree, dict) or not tree:
        return {prefix: tree} if prefix else {}
    flat: dict[str, object] = {}
    for key, value in tree.items():
        flat |= _flat(value, f"{prefix}.{key}" if prefix else str(key))
    return flat


def approval_from_event(event: object, label: str = APPROVAL_LABEL) -> Approval:
    """Approved only by the event of adding `label`, sent by someone other than the PR's author."""
    if not isinstance(event, dict) or not isinstance(event.get("pull_request"), dict):
        return Approval(False, note=f"no pull-request event: the base's policy applies (label `{label}`)")
    pull_request = event["pull_request"]
    author = _login(pull_request.get("user"))
    sender = _login(event.get("sender"))
    added = _name(event.get("label"))
    if event.get("action") == "labeled" and added == label:
        if sender and sender != author:
            return Approval(True, by=sender, note=f"approved by `{sender}` (label `{label}`)")
        return Approval(False, note=f"the author cannot approve their own change (label `{label}`)")
    labels = pull_request.get("labels") if isinstance(pull_request.get("labels"), list) else []
    if label in (_name(item) for item in labels):
        return Approval(
            False,
            note=f"the label `{label}` approves the run its adding starts; after a push, add it again",
        )
    return Approval(False, note=f"to apply it, someone other than the author adds the label `{label}`")


def _login(user: object) -> str | None:
    login = user.get("login") if isinstance(user, dict) else None
    return login if isinstance(login, str) and login else None


def _name(label: object) -> str | None:
    name = label.get("name") if isinstance(label, dict) else None
    return name if isinstance(name, str) else None
