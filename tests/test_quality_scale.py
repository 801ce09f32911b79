"""quality_scale.yaml lists every rule up to platinum with an honest, explained status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPONENT = Path(__file__).parent.parent / "custom_components" / "gemini_live"

# Rules of HA's integration quality scale (script/hassfest/quality_scale.py, ALL_RULES).
RULES: dict[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}
ALL_RULES = [rule for rules in RULES.values() for rule in rules]
STATUSES = {"done", "exempt", "todo"}


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    """The ``rules`` mapping of quality_scale.yaml."""
    data = yaml.safe_load((COMPONENT / "quality_scale.yaml").read_text())
    assert isinstance(data, dict)
    assert set(data) == {"rules"}
    result: dict[str, Any] = data["rules"]
    return result


def _status(value: Any) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    assert isinstance(value, dict), value
    assert set(value) <= {"status", "comment"}, value
    return value["status"], value.get("comment")


def test_every_rule_is_listed_once(rules: dict[str, Any]) -> None:
    """All rules up to platinum, and nothing unknown."""
    assert len(ALL_RULES) == len(set(ALL_RULES))
    assert sorted(rules) == sorted(ALL_RULES)


@pytest.mark.parametrize("rule", ALL_RULES)
def test_rule_status(rules: dict[str, Any], rule: str) -> None:
    """A valid status; exempt and todo say why."""
    status, comment = _status(rules[rule])
    assert status in STATUSES
    if status in ("exempt", "todo"):
        assert comment, f"{rule} is {status} without a comment"
        assert comment.strip()


def test_claims_match_the_files(rules: dict[str, Any]) -> None:
    """Spot checks of 'done' claims that files can prove."""
    if _status(rules["diagnostics"])[0] == "done":
        assert (COMPONENT / "diagnostics.py").is_file()
    if _status(rules["repair-issues"])[0] == "done":
        assert (COMPONENT / "repairs.py").is_file()
    if _status(rules["brands"])[0] == "done":
        for name in ("icon.png", "icon@2x.png", "logo.png", "logo@2x.png"):
            assert (COMPONENT / "brand" / name).is_file()
    if _status(rules["icon-translations"])[0] == "done":
        icons = json.loads((COMPONENT / "icons.json").read_text())
        assert set(icons["entity"]["sensor"]) == {
            "prompt_tokens",
            "response_tokens",
            "total_tokens",
        }
        assert "announce" in icons["services"]
    if _status(rules["strict-typing"])[0] == "done":
        assert (COMPONENT / "py.typed").is_file()
    manifest = json.loads((COMPONENT / "manifest.json").read_text())
    if _status(rules["integration-owner"])[0] == "done":
        assert manifest["codeowners"]


def test_brand_image_sizes() -> None:
    """Icons are square 256/512 px; logos 128-256 / 256-512 px on their shortest side."""
    from PIL import Image

    def size(name: str) -> tuple[int, int]:
        with Image.open(COMPONENT / "brand" / name) as image:
            assert image.format == "PNG"
            return image.size

    assert size("icon.png") == (256, 256)
    assert size("icon@2x.png") == (512, 512)
    assert 128 <= min(size("logo.png")) <= 256
    assert 256 <= min(size("logo@2x.png")) <= 512
