"""Kubernetes actuator: a Deployment's or StatefulSet's `scale` subresource, through the official client.

    GET   /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}/scale   -> autoscaling/v1 Scale
    PATCH (same path)  {"spec": {"replicas": n}}   Content-Type: application/strategic-merge-patch+json

Credentials: `kubeconfig` (a path; `context` picks one of its contexts), else in-cluster (the pod's
service account, when KUBERNETES_SERVICE_HOST is set), else `~/.kube/config`. The service account needs
`get` and `patch` on `deployments/scale` (or `statefulsets/scale`) in the namespace. Needs the `k8s` extra
(`pip install 'watchtower[k8s]'`). Building the actuator loads nothing and connects nowhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from watchtower.core.units import Duration
from watchtower.scale.base import ActuatorError, ApplyResult

# What the API server's refusals mean for whoever reads the error.
_HINTS = {
    401: "unauthorized: the credentials in the kubeconfig / service account token were rejected",
    403: "forbidden: grant get and patch on {plural}/scale in namespace {ns} to the service account",
    404: "{kind} {ns}/{name} not found",
    409: "conflict: the object changed meanwhile; the next cycle tries again",
    422: "invalid: the API server refused the replica count",
}


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["kubernetes"] = "kubernetes"
    name: str = Field(min_length=1)  # the Deployment or StatefulSet
    namespace: str = "default"
    resource: Literal["deployment", "statefulset"] = "deployment"
    kubeconfig: Path | None = None  # unset: in-cluster, else ~/.kube/config
    context: str | None = None
    timeout: Duration = 10.0  # per request


class KubernetesActuator:
    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.config = config
        self._api: Any = None
        self._client: Any = None

    @property
    def plural(self) -> str:
        return f"{self.config.resource}s"

    def _apps(self) -> Any:
        if self._api is None:
            try:
                from kubernetes import client, config
            except ImportError:
                raise ActuatorError(
                    "the kubernetes actuator needs the official client: pip install 'watchtower[k8s]'"
                ) from None
            conf = client.Configuration()
            c = self.config
            try:
                if c.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                    config.load_incluster_config(client_configuration=conf)
                else:
                    path = str(c.kubeconfig) if c.kubeconfig else None
                    config.load_kube_config(config_file=path, context=c.context, client_configuration=conf)
            except (config.ConfigException, OSError, TypeError, ValueError) as exc:
                where = c.kubeconfig or "in-cluster / ~/.kube/config"
                raise ActuatorError(
                    f"kubernetes target {self.name}: cannot load credentials from {where}: {exc}"
                ) from None
            conf.retries = 0  # one try per call; the controller's next cycle is the retry
            self._client = client.ApiClient(conf)
            self._api = client.AppsV1Api(self._client)
        return self._api

    def _call(self, verb: str, *args: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        api = self._apps()
        kind = {"deployment": "deployment", "statefulset": "stateful_set"}[self.config.resource]
        method = getattr(api, f"{verb}_namespaced_{kind}_scale")
        try:
            return method(
                self.config.name, self.config.namespace, *args, _request_timeout=self.config.timeout
            )
        except ApiException as exc:
            raise ActuatorError(self._explain(verb, exc)) from None
        except Exception as exc:  # urllib3 connection errors and the like; their text holds no credentials
            raise ActuatorError(
                f"kubernetes target {self.name}: {verb} {self.plural}/{self.config.name}/scale failed: {type(exc).__name__}"
            ) from None

    def _explain(self, verb: str, exc: Any) -> str:
        c = self.config
        hint = _HINTS.get(exc.status, "").format(
            plural=self.plural, ns=c.namespace, kind=c.resource, name=c.name
        )
        try:  # a Kubernetes Status object: its `message` names the object and the missing permission
            message = json.loads(exc.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = ""
        text = f"kubernetes target {self.name}: {verb} {self.plural}/{c.name}/scale in {c.namespace}: {exc.status} {exc.reason}"
        return text + (f": {hint}" if hint else "") + (f" ({message[:300]})" if message else "")

    # -- the actuator -------------------------------------------------------------------------------

    def current(self) -> int:
        scale = self._call("read")
        return int(scale.spec.replicas or 0)

    def apply(self, replicas: int) -> ApplyResult:
        if replicas < 0:
            return ApplyResult(self.name, replicas, None, error="replicas must be 0 or more")
        try:
            scale = self._call("patch", {"spec": {"replicas": replicas}})
        except ActuatorError as exc:
            return ApplyResult(self.name, replicas, None, how="scale-subresource", error=str(exc))
        return ApplyResult(self.name, replicas, int(scale.spec.replicas), how="scale-subresource")

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - close never raises
                pass
            self._client = self._api = None


def build(target_name: str, config: Config) -> KubernetesActuator:
    return KubernetesActuator(target_name, config)
