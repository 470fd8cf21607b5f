"""Fixtures for the alerting tests: a local fake Slack."""

from slack_fake import fake_slack  # noqa: F401 (a fixture, imported so pytest finds it)
