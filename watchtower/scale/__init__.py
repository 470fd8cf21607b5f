"""Autoscaling: a pure policy decides how many replicas a target needs; an actuator applies it."""
