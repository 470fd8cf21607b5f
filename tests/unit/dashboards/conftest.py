from grafana_fake import fake_grafana  # noqa: F401 (a fixture, imported so pytest finds it)
