"""Tests of the Live API emulator."""
