"""The capability table refuses options a model does not accept, before they reach the wire."""

from __future__ import annotations

from dataclasses import replace

import pytest

from custom_components.gemini_live.live import messages as m
from custom_components.gemini_live.live.models import (
    DEFAULT_MODEL,
    MODELS,
    UnknownModelError,
    UnsupportedOptionError,
    api_version,
    check_setup,
    get_model,
)

NB = m.FunctionDeclaration("HassTurnOn", behavior=m.Behavior.NON_BLOCKING)
BLOCKING = m.FunctionDeclaration("HassTurnOn", behavior=m.Behavior.BLOCKING)

# model -> (option, setup change) pairs the model must refuse
REFUSED: dict[str, list[tuple[str, dict[str, object]]]] = {
    "gemini-3.8-live": [
        ("responseModalities", {"response_modality": m.Modality.TEXT}),
        ("enableAffectiveDialog", {"affective_dialog": True}),
        ("thinkingConfig", {"thinking": m.ThinkingConfig(budget=0)}),
        ("thinkingConfig", {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.LOW)}),
        ("proactivity", {"proactive_audio": False}),
    ],
    "gemini-3.1-flash-live-preview": [
        ("responseModalities", {"response_modality": m.Modality.TEXT}),
        ("enableAffectiveDialog", {"affective_dialog": True}),
        ("proactivity", {"proactive_audio": True}),
        ("thinkingBudget", {"thinking": m.ThinkingConfig(budget=512)}),
        ("thinkingLevel", {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.XHIGH)}),
        ("behavior", {"functions": [NB]}),
        ("proactivity.proactiveVideo", {"proactive_video": True}),
    ],
    "gemini-3.8-live-extended-thinking": [
        ("responseModalities", {"response_modality": m.Modality.TEXT}),
        ("enableAffectiveDialog", {"affective_dialog": True}),
        ("thinkingBudget", {"thinking": m.ThinkingConfig(budget=512)}),
        ("thinkingLevel", {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.MINIMAL)}),
        ("thinkingLevel", {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.XHIGH)}),
        ("behavior", {"functions": [BLOCKING]}),
    ],
    "gemini-2.5-flash-native-audio-preview-12-2025": [
        ("thinkingLevel", {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.HIGH)}),
    ],
    "gemini-2.5-flash-native-audio-preview-09-2025": [
        ("thinkingLevel", {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.HIGH)}),
    ],
}
ACCEPTED: dict[str, list[dict[str, object]]] = {
    "gemini-3.8-live": [
        {"proactive_audio": True},
        {"functions": [NB]},
        {"proactive_video": True},
    ],
    "gemini-3.8-live-extended-thinking": [
        {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.HIGH)},
        {"functions": [NB]},
    ],
    "gemini-3.1-flash-live-preview": [
        {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.LOW)},
        {"thinking": m.ThinkingConfig(level=m.ThinkingLevel.LOW, include_thoughts=True)},
    ],
    "gemini-2.5-flash-native-audio-preview-12-2025": [
        {"response_modality": m.Modality.TEXT},
        {"affective_dialog": True, "proactive_audio": False},
        {"thinking": m.ThinkingConfig(budget=1024, include_thoughts=True)},
        {"functions": [NB]},
    ],
}


@pytest.mark.parametrize(
    ("model", "option", "change"),
    [(model, opt, change) for model, items in REFUSED.items() for opt, change in items],
)
def test_refused_options(model: str, option: str, change: dict[str, object]) -> None:
    """Each unsupported option raises a typed error naming the option."""
    cfg = replace(m.SetupConfig(model=model), **change)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedOptionError) as err:
        check_setup(cfg)
    assert err.value.option == option
    assert err.value.model == model


@pytest.mark.parametrize(
    ("model", "change"),
    [(model, change) for model, items in ACCEPTED.items() for change in items],
)
def test_accepted_options(model: str, change: dict[str, object]) -> None:
    """Supported options pass the gate."""
    cfg = replace(m.SetupConfig(model=model), **change)  # type: ignore[arg-type]
    assert check_setup(cfg).id == model


def test_api_version_v1alpha_only_when_needed() -> None:
    """Affective/proactive on 2.5 models need v1alpha; everything else v1beta."""
    base = m.SetupConfig(model="gemini-2.5-flash-native-audio-preview-12-2025")
    assert api_version(base) == "v1beta"
    assert api_version(replace(base, affective_dialog=True)) == "v1alpha"
    assert api_version(replace(base, proactive_audio=True)) == "v1alpha"
    assert api_version(m.SetupConfig(model=DEFAULT_MODEL, proactive_audio=True)) == "v1beta"


def test_lookup() -> None:
    """Models resolve with or without the models/ prefix; unknown ones raise."""
    assert get_model(f"models/{DEFAULT_MODEL}") is MODELS[DEFAULT_MODEL]
    with pytest.raises(UnknownModelError):
        get_model("gemini-live-2.5-flash-preview")
