"""Grafana dashboards as code: `layout` (what to show, pure), `render` (the Grafana SDK), `push`, `provisioning`."""
