"""Tests of the sans-I/O Live protocol layer."""
