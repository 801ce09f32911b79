"""Gemini Live wire protocol: sans-I/O codec, models, session state. No Home Assistant imports."""
