"""Protocol-faithful offline emulator of the Gemini Live API server (tests and the offline demo)."""
