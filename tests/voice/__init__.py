"""Voice tests: Wyoming satellite harness against HA's real wyoming integration."""
