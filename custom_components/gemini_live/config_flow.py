"""Config flow for the Gemini Live integration."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API, CONF_NAME, CONF_PROMPT
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import llm
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TemplateSelector,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio as vol

from .assistant import (
    CONF_CREATE_ASSISTANT,
    async_create_requested_assistants,
    async_request_assistant,
)
from .const import (
    CONF_ACTIVITY_HANDLING,
    CONF_AFFECTIVE_DIALOG,
    CONF_ANNOUNCE_TARGET,
    CONF_COMPRESSION,
    CONF_COMPRESSION_TARGET,
    CONF_COMPRESSION_TRIGGER,
    CONF_CURRENCY,
    CONF_END_SENSITIVITY,
    CONF_ENDPOINT,
    CONF_FAILURE_SCHEDULING,
    CONF_GOOGLE_SEARCH,
    CONF_IDLE_TIMEOUT,
    CONF_INCLUDE_THOUGHTS,
    CONF_LANGUAGE,
    CONF_MEDIA_RESOLUTION,
    CONF_MODEL,
    CONF_PREFIX_PADDING_MS,
    CONF_PROACTIVE_AUDIO,
    CONF_PROACTIVE_VIDEO,
    CONF_RESPONSE_MODALITY,
    CONF_SILENCE_DURATION_MS,
    CONF_SMART_TRANSCRIPTION,
    CONF_START_SENSITIVITY,
    CONF_SUCCESS_SCHEDULING,
    CONF_TEMPERATURE,
    CONF_THINKING_BUDGET,
    CONF_THINKING_LEVEL,
    CONF_TOOL_BEHAVIOR,
    CONF_TOOL_TIMEOUT,
    CONF_VAD_MODE,
    CONF_VOCABULARY,
    CONF_VOICE,
    DEFAULT_AGENT_NAME,
    DEFAULT_COMPRESSION_TARGET,
    DEFAULT_COMPRESSION_TRIGGER,
    DEFAULT_CURRENCY,
    DEFAULT_PRICES,
    DEFAULT_PROMPT,
    DEFAULT_TITLE,
    DOMAIN,
    LOGGER,
    RECOMMENDED_AGENT_OPTIONS,
    SECTION_COSTS,
    SUBENTRY_AGENT,
    TOOL_BEHAVIOR_AUTO,
    TOOL_BEHAVIOR_BLOCKING,
    VAD_AUTO,
    VAD_MANUAL,
)
from .live.endpoint import check_base_url
from .live.errors import (
    AuthenticationError,
    CannotConnectError,
    InvalidEndpointError,
    LiveError,
    ModelNotFoundError,
    QuotaExceededError,
)
from .live.messages import (
    DEFAULT_VOICE,
    VOICES,
    ActivityHandling,
    EndSensitivity,
    MediaResolution,
    Modality,
    Scheduling,
    StartSensitivity,
    ThinkingLevel,
)
from .live.models import MODELS, ModelCapabilities, Status, get_model
from .options import offered_options
from .validation import async_validate_credentials


def _user_schema(defaults: Mapping[str, Any], *, offer_assistant: bool) -> vol.Schema:
    schema: dict[Any, Any] = {
        vol.Required(CONF_API_KEY): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        ),
        vol.Optional(
            CONF_ENDPOINT, description={"suggested_value": defaults.get(CONF_ENDPOINT)}
        ): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
    }
    if offer_assistant:
        schema[
            vol.Required(CONF_CREATE_ASSISTANT, default=defaults.get(CONF_CREATE_ASSISTANT, True))
        ] = BooleanSelector()
    return vol.Schema(schema)


async def _validate(hass: HomeAssistant, data: Mapping[str, Any]) -> dict[str, str]:
    """Check the endpoint's form, then open a real Live session; map failures to form errors."""
    try:
        if endpoint := data.get(CONF_ENDPOINT):
            check_base_url(endpoint)  # before connecting: the form's own error
        await async_validate_credentials(hass, data[CONF_API_KEY], data.get(CONF_ENDPOINT) or None)
    except InvalidEndpointError:
        return {CONF_ENDPOINT: "invalid_endpoint"}
    except AuthenticationError:
        return {"base": "invalid_auth"}
    except ModelNotFoundError:
        return {"base": "model_not_found"}
    except QuotaExceededError:
        return {"base": "quota_exceeded"}
    except CannotConnectError:
        return {"base": "cannot_connect"}
    except LiveError:
        LOGGER.exception("Unexpected error validating the Gemini API key")
        return {"base": "unknown"}
    return {}


class GeminiLiveConfigFlow(ConfigFlow, domain=DOMAIN):
    """Handle the config flow: one entry per API key."""

    VERSION = 2
    MINOR_VERSION = 1

    _create_assistant = False

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the API key (and optionally an endpoint), validated live.

        A new entry also offers an assistant for its first agent (see assistant.py).
        """
        errors: dict[str, str] = {}
        if user_input is not None:
            self._create_assistant = bool(user_input.get(CONF_CREATE_ASSISTANT))
            data = _clean(user_input)
            if self.source == SOURCE_USER:
                self._async_abort_entries_match({CONF_API_KEY: data[CONF_API_KEY]})
            if not (errors := await _validate(self.hass, data)):
                if self.source in (SOURCE_REAUTH, SOURCE_RECONFIGURE):
                    entry = self._current_entry()
                    if {**entry.data, **data} == dict(entry.data):
                        # Unchanged (e.g. a key that works again): the update listener
                        # only reloads on a change, so reload here.
                        self.hass.config_entries.async_schedule_reload(entry.entry_id)
                    # Changed: the entry's update listener reloads it.
                    return self.async_update_and_abort(entry, data_updates=data)
                return self.async_create_entry(
                    title=DEFAULT_TITLE,
                    data=data,
                    subentries=[
                        {
                            "subentry_type": SUBENTRY_AGENT,
                            "data": {
                                **RECOMMENDED_AGENT_OPTIONS,
                                CONF_PROMPT: DEFAULT_PROMPT,
                                CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
                            },
                            "title": DEFAULT_AGENT_NAME,
                            "unique_id": None,
                        }
                    ],
                )
        defaults = user_input or {}
        if self.source in (SOURCE_REAUTH, SOURCE_RECONFIGURE):
            entry = self._current_entry()
            defaults = {CONF_ENDPOINT: entry.data.get(CONF_ENDPOINT), **defaults}
        return self.async_show_form(
            step_id="user",
            data_schema=_user_schema(defaults, offer_assistant=self.source == SOURCE_USER),
            errors=errors,
            description_placeholders={"api_key_url": "https://aistudio.google.com/app/apikey"},
        )

    async def async_on_create_entry(self, result: ConfigFlowResult) -> ConfigFlowResult:
        """The entry is added (and set up): create the first agent's assistant if asked."""
        entry = result.get("result")
        if self._create_assistant and isinstance(entry, ConfigEntry):
            async_request_assistant(self.hass, entry.entry_id, DEFAULT_AGENT_NAME, frozenset())
            if entry.state is ConfigEntryState.LOADED:
                await async_create_requested_assistants(self.hass, entry)
            # Not loaded (the service is unreachable right now): its first setup creates it.
        return result

    def _current_entry(self) -> ConfigEntry:
        if self.source == SOURCE_REAUTH:
            return self._get_reauth_entry()
        return self._get_reconfigure_entry()

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The service rejected the key: ask for a new one."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Tell the user why, then show the key form."""
        if user_input is not None:
            return await self.async_step_user()
        return self.async_show_form(
            step_id="reauth_confirm",
            description_placeholders={CONF_NAME: self._get_reauth_entry().title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the key or endpoint of an existing entry."""
        return await self.async_step_user(user_input)

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Agents are subentries."""
        return {SUBENTRY_AGENT: AgentSubentryFlow}


def _clean(user_input: Mapping[str, Any]) -> dict[str, Any]:
    endpoint = str(user_input.get(CONF_ENDPOINT) or "").strip().rstrip("/")
    return {CONF_API_KEY: str(user_input[CONF_API_KEY]).strip(), CONF_ENDPOINT: endpoint}


# ------------------------------------------------------------------------------------------------
# Agent subentries
# ------------------------------------------------------------------------------------------------


def _select(options: list[str], *, translation_key: str | None = None) -> SelectSelector:
    config = SelectSelectorConfig(options=options, mode=SelectSelectorMode.DROPDOWN)
    if translation_key:
        config["translation_key"] = translation_key
    return SelectSelector(config)


def _number(low: float, high: float, step: float, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
    if unit:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _model_options() -> list[SelectOptionDict]:
    return [
        SelectOptionDict(value=m.id, label=f"{m.id} ({m.status.value})")
        for m in MODELS.values()
        if m.status is not Status.RETIRED
    ]


def _choices(values: Iterable[StrEnum], key: str) -> Callable[[ModelCapabilities], Any]:
    """A translated dropdown of enum values, the same for every model."""
    options = [value.value for value in values]
    return lambda _caps: _select(options, translation_key=key)


@dataclass(frozen=True, slots=True)
class LiveField:
    """A Live setting of the form: its selector, and what an empty field means.

    ``default`` is what the integration uses when the field is left empty (shown pre-filled);
    None means the field is left out of the session setup, so the service decides (the help
    text says so).
    """

    selector: Callable[[ModelCapabilities], Any]
    default: Any = None


# option key -> field, in display order
LIVE_FIELDS: dict[str, LiveField] = {
    CONF_RESPONSE_MODALITY: LiveField(
        _choices(Modality, CONF_RESPONSE_MODALITY),
        Modality.AUDIO.value,
    ),
    CONF_VOICE: LiveField(lambda _caps: _select(list(VOICES)), DEFAULT_VOICE),
    CONF_LANGUAGE: LiveField(lambda _caps: TextSelector()),
    CONF_TEMPERATURE: LiveField(lambda _caps: _number(0, 2, 0.05)),
    CONF_THINKING_BUDGET: LiveField(lambda _caps: _number(-1, 24576, 1, "tokens")),
    CONF_THINKING_LEVEL: LiveField(
        lambda caps: _select(
            [t.value for t in ThinkingLevel if t in caps.thinking_levels],
            translation_key=CONF_THINKING_LEVEL,
        )
    ),
    CONF_INCLUDE_THOUGHTS: LiveField(lambda _caps: BooleanSelector(), False),
    CONF_AFFECTIVE_DIALOG: LiveField(lambda _caps: BooleanSelector(), False),
    CONF_PROACTIVE_AUDIO: LiveField(lambda _caps: BooleanSelector(), False),
    CONF_PROACTIVE_VIDEO: LiveField(lambda _caps: BooleanSelector(), False),
    CONF_VAD_MODE: LiveField(
        lambda _caps: _select([VAD_AUTO, VAD_MANUAL], translation_key=CONF_VAD_MODE), VAD_AUTO
    ),
    CONF_START_SENSITIVITY: LiveField(_choices(StartSensitivity, CONF_START_SENSITIVITY)),
    CONF_END_SENSITIVITY: LiveField(_choices(EndSensitivity, CONF_END_SENSITIVITY)),
    CONF_PREFIX_PADDING_MS: LiveField(lambda _caps: _number(0, 2000, 10, "ms")),
    CONF_SILENCE_DURATION_MS: LiveField(lambda _caps: _number(50, 5000, 10, "ms")),
    CONF_ACTIVITY_HANDLING: LiveField(_choices(ActivityHandling, CONF_ACTIVITY_HANDLING)),
    CONF_MEDIA_RESOLUTION: LiveField(_choices(MediaResolution, CONF_MEDIA_RESOLUTION)),
    CONF_COMPRESSION: LiveField(lambda _caps: BooleanSelector(), True),
    CONF_COMPRESSION_TRIGGER: LiveField(
        lambda _caps: _number(1000, 131072, 100, "tokens"), DEFAULT_COMPRESSION_TRIGGER
    ),
    CONF_COMPRESSION_TARGET: LiveField(
        lambda _caps: _number(500, 131072, 100, "tokens"), DEFAULT_COMPRESSION_TARGET
    ),
    CONF_GOOGLE_SEARCH: LiveField(lambda _caps: BooleanSelector(), False),
    CONF_SMART_TRANSCRIPTION: LiveField(lambda _caps: BooleanSelector(), False),
    # Empty: only the home's names (see runtime/vocabulary.py), not "the service decides".
    CONF_VOCABULARY: LiveField(lambda _caps: TextSelector(TextSelectorConfig(multiple=True)), []),
}


class AgentSubentryFlow(ConfigSubentryFlow):
    """Create or reconfigure a Gemini Live agent: model first, then what that model accepts."""

    options: dict[str, Any]
    _create_assistant = False

    @property
    def _is_new(self) -> bool:
        return self.source == SOURCE_USER

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """New agent: the recommended options, with the Assist API ticked."""
        self.options = {
            **RECOMMENDED_AGENT_OPTIONS,
            CONF_PROMPT: DEFAULT_PROMPT,
            CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
        }
        return await self.async_step_agent()

    def _unique_default_name(self) -> str:
        """The default name "Gemini Live", or "Gemini Live 2"... if another agent has it."""
        taken = {sub.title for sub in self._get_entry().subentries.values()}
        name, number = DEFAULT_AGENT_NAME, 1
        while name in taken:
            number += 1
            name = f"{DEFAULT_AGENT_NAME} {number}"
        return name

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Existing agent."""
        self.options = dict(self._get_reconfigure_subentry().data)
        return await self.async_step_agent()

    async def async_step_agent(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Name, model, prompt, LLM APIs and tool policy."""
        if self._get_entry().state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        if user_input is not None:
            self._create_assistant = bool(user_input.pop(CONF_CREATE_ASSISTANT, False))
            # A field the user emptied is left out of the form's data: forget its old value.
            for key in (CONF_PROMPT, CONF_LLM_HASS_API, CONF_ANNOUNCE_TARGET):
                if not user_input.get(key):
                    user_input.pop(key, None)
                    self.options.pop(key, None)
            self.options.update(user_input.pop(SECTION_COSTS, {}))
            self.options.update(user_input)
            return await self.async_step_live()

        apis = [
            SelectOptionDict(label=api.name, value=api.id) for api in llm.async_get_apis(self.hass)
        ]
        schema: dict[Any, Any] = {}
        if self._is_new:
            schema[vol.Required(CONF_NAME, default=self._unique_default_name())] = str
            schema[vol.Required(CONF_CREATE_ASSISTANT, default=True)] = BooleanSelector()
        schema.update(
            {
                vol.Required(CONF_MODEL, default=self.options[CONF_MODEL]): SelectSelector(
                    SelectSelectorConfig(options=_model_options(), mode=SelectSelectorMode.LIST)
                ),
                vol.Optional(
                    CONF_PROMPT,
                    description={"suggested_value": self.options.get(CONF_PROMPT)},
                ): TemplateSelector(),
                vol.Optional(
                    CONF_LLM_HASS_API,
                    description={"suggested_value": self.options.get(CONF_LLM_HASS_API)},
                ): SelectSelector(SelectSelectorConfig(options=apis, multiple=True)),
                vol.Required(
                    CONF_TOOL_BEHAVIOR,
                    default=self.options.get(CONF_TOOL_BEHAVIOR, TOOL_BEHAVIOR_AUTO),
                ): _select(
                    [TOOL_BEHAVIOR_AUTO, TOOL_BEHAVIOR_BLOCKING],
                    translation_key=CONF_TOOL_BEHAVIOR,
                ),
                vol.Required(
                    CONF_SUCCESS_SCHEDULING,
                    default=self.options.get(CONF_SUCCESS_SCHEDULING, Scheduling.SILENT.value),
                ): _select([s.value for s in Scheduling], translation_key="scheduling"),
                vol.Required(
                    CONF_FAILURE_SCHEDULING,
                    default=self.options.get(CONF_FAILURE_SCHEDULING, Scheduling.INTERRUPT.value),
                ): _select([s.value for s in Scheduling], translation_key="scheduling"),
                vol.Required(
                    CONF_TOOL_TIMEOUT, default=self.options.get(CONF_TOOL_TIMEOUT, 30)
                ): _number(1, 600, 1, "s"),
                vol.Required(
                    CONF_IDLE_TIMEOUT, default=self.options.get(CONF_IDLE_TIMEOUT, 300)
                ): _number(10, 3600, 10, "s"),
                vol.Optional(
                    CONF_ANNOUNCE_TARGET,
                    CONF_CURRENCY,
                    description={"suggested_value": self.options.get(CONF_ANNOUNCE_TARGET)},
                ): EntitySelector(
                    EntitySelectorConfig(domain=["media_player", "assist_satellite"])
                ),
                vol.Optional(SECTION_COSTS): section(self._costs_schema(), {"collapsed": True}),
            }
        )
        return self.async_show_form(step_id="agent", data_schema=vol.Schema(schema))

    def _costs_schema(self) -> vol.Schema:
        """The estimated-cost sensor's prices (per million tokens) and currency."""
        prices: dict[Any, Any] = {
            vol.Required(key, default=self.options.get(key, price)): _number(0, 1000, 0.01)
            for key, price in DEFAULT_PRICES.items()
        }
        return vol.Schema(
            {
                vol.Required(
                    CONF_CURRENCY, default=self.options.get(CONF_CURRENCY, DEFAULT_CURRENCY)
                ): TextSelector(),
                **prices,
            }
        )

    async def async_step_live(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Live settings the chosen model accepts (and only those)."""
        caps = get_model(self.options[CONF_MODEL])
        offered = offered_options(caps)
        if user_input is not None:
            # The form's data is the whole Live setting: drop fields the user emptied and those
            # the model does not accept (e.g. left from another model).
            for key in LIVE_FIELDS:
                self.options.pop(key, None)
            self.options.update({k: v for k, v in user_input.items() if k in offered})
            if self._is_new:
                name = self.options.pop(CONF_NAME)
                if self._create_assistant:
                    # Created when the entry has reloaded with the new agent's entities.
                    entry = self._get_entry()
                    async_request_assistant(
                        self.hass, entry.entry_id, name, frozenset(entry.subentries)
                    )
                return self.async_create_entry(title=name, data=self.options)
            return self.async_update_and_abort(
                self._get_entry(), self._get_reconfigure_subentry(), data=self.options
            )
        schema: dict[Any, Any] = {}
        for key, live_field in LIVE_FIELDS.items():
            if key not in offered:
                continue
            # As HA's LLM integrations do: the stored value is suggested; the default (if the
            # integration has one) is shown when there is none and used for an empty field.
            description = {"suggested_value": self.options.get(key)}
            marker = (
                vol.Optional(key, description=description)
                if live_field.default is None
                else vol.Optional(key, description=description, default=live_field.default)
            )
            schema[marker] = live_field.selector(caps)
        return self.async_show_form(
            step_id="live",
            data_schema=vol.Schema(schema),
            description_placeholders={"model": self.options[CONF_MODEL]},
        )
