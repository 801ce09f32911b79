"""Config flow for the Gemini Live integration."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_API_KEY
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio as vol

from .const import CONF_ENDPOINT, DEFAULT_TITLE, DOMAIN

STEP_USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_API_KEY): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        ),
    }
)


class GeminiLiveConfigFlow(ConfigFlow, domain=DOMAIN):
    """Handle the config flow: one entry per API key."""

    VERSION = 2
    MINOR_VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the API key."""
        if user_input is not None:
            api_key = user_input[CONF_API_KEY].strip()
            self._async_abort_entries_match({CONF_API_KEY: api_key})
            return self.async_create_entry(
                title=DEFAULT_TITLE, data={CONF_API_KEY: api_key, CONF_ENDPOINT: ""}
            )
        return self.async_show_form(step_id="user", data_schema=STEP_USER_SCHEMA)
