"""Actuator kinds: each module exports a pydantic `Config` (with its `kind`) and `build(target_name, config)`."""
