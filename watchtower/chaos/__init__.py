"""Chaos runs with verdicts: inject faults, then judge from what the sinks hold and what watchtower paged.

`verdict` (pure) and `readback` (I/O) judge conservation; `inject` sends records with a `chaos` header and
keeps each one's expected outcome at its (partition, offset). See docs/chaos.md.
"""
