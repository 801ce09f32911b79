"""ESPHome voice satellites end to end, over the real native API."""
