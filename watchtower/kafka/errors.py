"""One exception for everything the Kafka client layer raises, with secrets scrubbed from its text.

confluent-kafka raises `KafkaException` carrying a `KafkaError`, and hands bare `KafkaError`s to
callbacks and futures. Callers of watchtower catch `KafkaClientError` instead and read `code` (the
librdkafka error name, e.g. `TOPIC_ALREADY_EXISTS`, or a watchtower one such as `TOO_FEW_PARTITIONS`)
and `description`. librdkafka redacts secrets in its own logs, but an exception message can still echo a
value back (a secret pasted into the wrong key, say), so every wrapped text goes through `redact`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from watchtower.config.models import is_secret_key

MASK = "***"


class KafkaClientError(Exception):
    """A Kafka operation failed. `code` is a stable name to branch on; `description` is for people."""

    def __init__(self, code: str, description: str, *, retriable: bool = False, fatal: bool = False):
        self.code = code
        self.description = description
        self.retriable = retriable
        self.fatal = fatal
        super().__init__(f"[{code}] {description}")

    @classmethod
    def wrap(
        cls, exc: BaseException | KafkaError, secrets: Iterable[str] = (), context: str = ""
    ) -> KafkaClientError:
        """Turn a KafkaError / KafkaException (or any exception from the client) into a KafkaClientError."""
        err = exc
        if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
            err = exc.args[0]
        if isinstance(err, KafkaError):
            code, text = err.name(), err.str()
            retriable, fatal = bool(err.retriable()), bool(err.fatal())
        else:
            code, text = type(exc).__name__, str(exc)
            retriable = fatal = False
        if context:
            text = f"{context}: {text}"
        return cls(code, redact(text, secrets), retriable=retriable, fatal=fatal)


def secret_values(conf: Mapping[str, Any]) -> list[str]:
    """The values of the secret keys in a librdkafka config, to scrub from any text built near it."""
    return [str(v) for k, v in conf.items() if is_secret_key(k) and v not in (None, "")]


def redact(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret that contains another one is masked whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def masked(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a librdkafka config fit for logs: secret keys masked, callbacks named rather than repr'd."""
    out: dict[str, Any] = {}
    for key, value in conf.items():
        if is_secret_key(key):
            out[key] = MASK
        elif callable(value) or key == "logger":
            out[key] = f"<{getattr(value, '__name__', type(value).__name__)}>"
        else:
            out[key] = value
    return out


class StageError(RuntimeError):
    """One stage of a collection cycle failed: the message names the stage and the Kafka error code
    (or the exception type), never a secret-bearing config."""

    def __init__(self, stage: str, cause: BaseException):
        self.stage = stage
        code = (
            cause.args[0].name()
            if isinstance(cause, KafkaException) and cause.args and isinstance(cause.args[0], KafkaError)
            else type(cause).__name__
        )
        super().__init__(f"{stage}: {code}: {cause}")
