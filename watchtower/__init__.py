"""Watchtower: an SLA guardrail for real-time data pipelines."""

__version__ = "0.1.0"
