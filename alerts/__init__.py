"""The default alert rules, shipped as package data so `watchtower run` finds them from any directory.

This directory is the single source: `watchtower.rules.packaged` locates it through importlib.resources,
in an editable install (this checkout) and a regular one (site-packages) alike.
"""
