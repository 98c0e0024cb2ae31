"""Metrics (pure functions), the evaluation loop and reports."""
