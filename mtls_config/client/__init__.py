"""The instance client: the only code that talks HTTP to a ServiceNow instance (or the emulator).

The engine gets an ``InstanceClient`` and nothing else; the CLI builds it from ``InstanceSettings`` and,
for the local instance, hands it the emulator's in-process transport.
Never imports the emulator or the CLI.
"""

from mtls_config.client.batch import BatchRequest, BatchResponse
from mtls_config.client.instance import InstanceClient
from mtls_config.client.query import in_list_chunks
from mtls_config.client.retry import RetryPolicy
from mtls_config.client.stats import OperationStats, RequestStats

__all__ = [
    "BatchRequest",
    "BatchResponse",
    "InstanceClient",
    "OperationStats",
    "RequestStats",
    "RetryPolicy",
    "in_list_chunks",
]
