"""Chaos scenarios that prove the pipeline and the guardrail."""
