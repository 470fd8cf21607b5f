"""Push the built dashboards to a Grafana through its HTTP API (grafana-client), idempotently.

    plan = plan_push(api, dashboards, folder)     GET only: what would change and why
    apply(api, plan, folder)                      POST only what differs

Per dashboard: `GET /api/dashboards/uid/:uid`; if Grafana already holds the same JSON in the same folder,
nothing is sent (so a second push bumps no version); otherwise `POST /api/dashboards/db` with
`{dashboard, folderUid, overwrite: true, message}`. The folder is looked up with `GET /api/folders` and
created with `POST /api/folders` when missing. The token is a SecretStr: it goes into the Authorization
header and nowhere else (not in logs, errors or the plan).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException
from pydantic import SecretStr

log = logging.getLogger(__name__)

FOLDER_UID = "watchtower"
FOLDER_TITLE = "watchtower"
# Fields Grafana adds or owns: not part of what we compare.
SERVER_FIELDS = ("id", "version")


class PushError(Exception):
    """Grafana refused or could not be reached; the message names the dashboard and the status, never the token."""


@dataclass(frozen=True)
class Change:
    uid: str
    title: str
    action: str  # "create", "update", "unchanged"
    reason: str
    body: dict[str, Any]


def connect(url: str, token: SecretStr | None, timeout: float = 10.0) -> GrafanaApi:
    return GrafanaApi.from_url(url, credential=token.get_secret_value() if token else None, timeout=timeout)


def load_dir(path: str | Path) -> list[dict[str, Any]]:
    files = sorted(Path(path).glob("*.json"))
    if not files:
        raise PushError(f"{path}: no *.json dashboards; run `watchtower dashboards build` first")
    return [json.loads(f.read_text()) for f in files]


def _comparable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in SERVER_FIELDS}


def digest(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(_comparable(d), sort_keys=True).encode()).hexdigest()[:12]


def _call(what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except GrafanaException as exc:
        raise PushError(f"{what}: Grafana answered {exc.status_code}: {_safe(exc)}") from None
    except Exception as exc:  # network errors from the HTTP library
        raise PushError(
            f"{what}: {type(exc).__name__}: cannot reach Grafana; check --url (or grafana.url)"
        ) from None


def _safe(exc: GrafanaException) -> str:
    msg = str(getattr(exc, "message", "")) or type(exc).__name__
    return msg[:200]


def plan_push(
    api: GrafanaApi, dashboards: list[dict[str, Any]], folder_uid: str = FOLDER_UID
) -> list[Change]:
    plan = []
    for d in dashboards:
        uid, title = d["uid"], d.get("title", d["uid"])
        try:
            existing = api.dashboard.get_dashboard(uid)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise PushError(
                    f"GET /api/dashboards/uid/{uid}: Grafana answered {exc.status_code}: {_safe(exc)}"
                ) from None
            existing = None
        except GrafanaException as exc:
            raise PushError(
                f"GET /api/dashboards/uid/{uid}: Grafana answered {exc.status_code}: {_safe(exc)}"
            ) from None
        body = {
            "dashboard": {**_comparable(d), "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": f"watchtower dashboards push ({digest(d)})",
        }
        if existing is None:
            plan.append(Change(uid, title, "create", "not in Grafana", body))
            continue
        current = existing.get("dashboard", {})
        in_folder = existing.get("meta", {}).get("folderUid", "")
        if in_folder != folder_uid:
            plan.append(
                Change(
                    uid, title, "update", f"in folder {in_folder or 'General'!r}, not {folder_uid!r}", body
                )
            )
        elif _comparable(current) != _comparable(d):
            changed = sorted(
                k for k in set(current) | set(d) if k not in SERVER_FIELDS and current.get(k) != d.get(k)
            )
            plan.append(Change(uid, title, "update", "differs in " + ", ".join(changed), body))
        else:
            plan.append(Change(uid, title, "unchanged", f"same as version {current.get('version')}", body))
    return plan


def ensure_folder(
    api: GrafanaApi, uid: str = FOLDER_UID, title: str = FOLDER_TITLE, *, dry_run: bool = False
) -> str:
    """'exists' or 'created' (or 'would create' on a dry run)."""
    folders = _call("GET /api/folders", api.folder.get_all_folders)
    if any(f.get("uid") == uid for f in folders):
        return "exists"
    if dry_run:
        return "would create"
    _call("POST /api/folders", api.folder.create_folder, title, uid)
    return "created"


def apply(api: GrafanaApi, plan: list[Change]) -> list[Change]:
    """POST the dashboards that differ; return what was sent."""
    sent = []
    for c in plan:
        if c.action == "unchanged":
            continue
        _call(f"POST /api/dashboards/db ({c.uid})", api.dashboard.update_dashboard, c.body)
        log.info("dashboard pushed", extra={"uid": c.uid, "action": c.action})
        sent.append(c)
    return sent
