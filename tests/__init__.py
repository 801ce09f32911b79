"""Tests for the Gemini Live integration."""
