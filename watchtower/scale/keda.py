"""A KEDA ScaledObject whose trigger polls watchtower's decision: for clusters where KEDA owns the HPA.

KEDA's `metrics-api` scaler GETs `<watchtower>/api/v1/scaling/<target>` and reads the desired replica
count at `valueLocation` (a GJSON path). The trigger's `metricType: AverageValue` with `targetValue: "1"`
makes the HPA's own formula hand that number through unchanged:

    desired replicas = ceil(metric value / targetValue) = ceil(watchtower_desired / 1) = watchtower_desired

(With `Value` instead, the HPA would compute ceil(current x value / target), which is not what we want.)
watchtower's policy already applies its windows, steps and cooldowns, so the generated HPA behavior has
no stabilization window of its own (0 s both ways; an HPA default of 300 s down would stack on ours) and
allows any step. One caveat: the HPA ignores changes within its tolerance (10% by default, a
kube-controller-manager flag), so above 10 replicas a one-replica change can be held back.

Pure: builds the manifest as data; `watchtower scaling keda` writes it as YAML.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "keda.sh/v1alpha1"
DEFAULT_VALUE_LOCATION = "desired"


def scaled_object(
    target: str,
    *,
    watchtower_url: str,
    scale_target: str,
    namespace: str = "default",
    kind: str = "Deployment",
    min_replicas: int = 1,
    max_replicas: int = 10,
    value_location: str = DEFAULT_VALUE_LOCATION,
    polling_interval: int = 15,
    name: str | None = None,
) -> dict[str, Any]:
    """The ScaledObject for `target` (a name under `scaling.targets`), scaling `kind`/`scale_target`."""
    if not 0 <= min_replicas <= max_replicas:
        raise ValueError(f"need 0 <= min_replicas ({min_replicas}) <= max_replicas ({max_replicas})")
    if polling_interval < 1:
        raise ValueError("polling_interval is in whole seconds, at least 1")
    no_window = {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    up = {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Pods", "value": max(max_replicas, 1), "periodSeconds": 15}],
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "ScaledObject",
        "metadata": {
            "name": name or f"watchtower-{target}",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "watchtower", "watchtower.io/scaling-target": target},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": scale_target},
            "pollingInterval": polling_interval,
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max_replicas,
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": no_window, "scaleUp": up}}
            },
            "triggers": [
                {
                    "type": "metrics-api",
                    "name": f"watchtower-{target}",
                    "metricType": "AverageValue",
                    "metadata": {
                        "url": f"{watchtower_url.rstrip('/')}/api/v1/scaling/{target}",
                        "format": "json",
                        "valueLocation": value_location,
                        "targetValue": "1",
                        "activationTargetValue": "0",
                    },
                }
            ],
        },
    }
