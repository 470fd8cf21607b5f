"""The `grafana:` config section: where `watchtower dashboards push` sends the dashboards, and its API token.

Validation only; pure. The token is a SecretStr, like the other secrets (kafka.secrets, the Slack token):
masked in `watchtower config check`, in logs and in errors. The command-line flags win over these values
(precedence in docs/dashboards.md).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class GrafanaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Grafana's base URL, e.g. http://localhost:3000. Unset: `dashboards push` needs --url.
    url: str | None = None
    # The uid (and title) of the folder the dashboards go into; created when missing.
    folder: str = Field(default="watchtower", min_length=1)
    # A service account token (glsa_...). Or WATCHTOWER__GRAFANA__TOKEN; never printed.
    token: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL; e.g. http://localhost:3000")
        return v
