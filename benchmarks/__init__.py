"""Benchmarks that print numbers (run as modules: python -m benchmarks.bench_protocol)."""

# Home Assistant (2026.11+) aliases httpx to httpx2 on import and refuses once httpx is loaded;
# google-genai imports httpx, so HA must come first.
import homeassistant  # noqa: F401
