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
