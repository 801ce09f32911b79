"""Developer tools: test, benchmark and demo harnesses (never shipped with the integration)."""
