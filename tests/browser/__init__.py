"""The real-browser test: Chromium driven by Selenium against the served demo."""
