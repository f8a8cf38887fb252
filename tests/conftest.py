"""Cross-package tests run in the nox 'integration' session with every package installed."""
