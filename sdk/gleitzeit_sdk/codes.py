"""JSON-RPC error codes used by protocol v1 (see sdk/PROTOCOL.md, "Errors")."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PROVIDER_ERROR = -32000  # provider internal error
OVERLOADED = -32001  # more than maxInFlight requests; retryable
NOT_INITIALIZED = -32002  # task request before `initialized`
CANCELLED = -32800  # request cancelled by $/cancelRequest
TASK_FAILED = -32803  # the task ran and failed; data says whether retryable

PROTOCOL_VERSION = "1"
SUPPORTED_VERSIONS = ("1",)
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: the largest message a side accepts in pieces (PROTOCOL.md §1.1); 0 = no pieces
DEFAULT_MAX_ASSEMBLED_BYTES = 256 * 1024 * 1024

from enum import StrEnum  # noqa: E402  (the constants above are the wire's; this is the engine's vocabulary)


class FailureKind(StrEnum):
    """Why an attempt failed, as the engine classifies it: one vocabulary for the provider
    host, the scheduler, the dispatchers and the worker reports (a string on the wire).

    A provider's own error class (``TaskFailed(type="ValueError")``) is not a kind: it
    arrives as ``TASK_FAILED`` and leads the error message.
    """

    PROVIDER_ERROR = "provider_error"  # a JSON-RPC error the provider sent without a task failure
    TASK_FAILED = "task_failed"  # the task ran and failed (TaskFailed, code -32803)
    PROVIDER_FAILED = "provider_failed"  # the provider could not be started or was given up on
    STARTUP_TIMEOUT = "startup_timeout"
    CRASHED = "crashed"  # the provider process ended during the attempt
    TIMEOUT = "timeout"  # the attempt's own deadline passed
    CANCELLED = "cancelled"  # the run (or its caller) cancelled the attempt
    CANCELLED_BY_PROVIDER = "cancelled_by_provider"
    OVERLOADED = "overloaded"
    INVALID_PARAMS = "invalid_params"
    INVALID_RESPONSE = "invalid_response"
    TOO_LARGE = "too_large"
    SUBSTITUTION = "substitution"  # a ${…} reference could not be filled in
    WORKER_LOST = "worker_lost"  # the worker running it stopped sending heartbeats or stopped
    REDIS_UNAVAILABLE = "redis_unavailable"
    SECRET_MISSING = "secret_missing"  # a worker lacks a ${secrets.…} value the attempt needs
    CONFIG = "config"
