"""Neutral value types every layer shares: labels, samples, readings, metric specs, units, the history.

Nothing here imports another watchtower package.
"""
