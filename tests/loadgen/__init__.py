"""Tests of the load generator (devtools/loadgen.py)."""
