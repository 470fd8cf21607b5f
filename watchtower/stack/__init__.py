"""The local stack: an embedded Kafka-protocol broker and Redis, or the external ones the config names."""

from watchtower.stack.stack import Endpoints, Stack, StackError, StackStatus, resolve_endpoints
from watchtower.stack.state import StackInfo

__all__ = ["Endpoints", "Stack", "StackError", "StackInfo", "StackStatus", "resolve_endpoints"]
