"""Notifiers: the seam (`base`), Slack, a generic webhook, memory, and the dispatcher that drives them."""
