"""Custom components (package marker so tests import ours, not phcc's)."""
