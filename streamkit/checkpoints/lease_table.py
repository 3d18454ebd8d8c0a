"""How streamkit creates a DynamoDB lease table: the options of the KCL's `LeaseManagementConfig` for the
tables it creates, with the KCL's defaults (awslabs/amazon-kinesis-client, ``leases/LeaseManagementConfig.java``
and ``leases/dynamodb/DynamoDBLeaseRefresher.java``): on-demand billing (10 read and 10 write units
when provisioned, ``initialLeaseTableRead/WriteCapacity``), no deletion protection, no point-in-time
recovery, no tags. As in the KCL, tags and deletion protection are set when the table is created, and
point-in-time recovery is turned on whenever it is asked for, on an existing table too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streamkit.errors import ConfigurationError
from streamkit.limits import DYNAMODB_TAG_KEY_MAX_CHARS, DYNAMODB_TAG_VALUE_MAX_CHARS

__all__ = ["LeaseTableOptions"]

BillingMode = Literal["PAY_PER_REQUEST", "PROVISIONED"]


@dataclass(frozen=True, kw_only=True)
class LeaseTableOptions:
    billing_mode: BillingMode = "PAY_PER_REQUEST"
    #: Capacity units of a PROVISIONED table (and of its lease-owner index, as the KCL sizes it).
    read_capacity: int = 10
    write_capacity: int = 10
    deletion_protection: bool = False
    point_in_time_recovery: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.billing_mode not in ("PAY_PER_REQUEST", "PROVISIONED"):
            raise ConfigurationError(f"LeaseTableOptions.billing_mode must be PAY_PER_REQUEST or PROVISIONED, "
                                     f"got {self.billing_mode!r}")
        if self.read_capacity < 1 or self.write_capacity < 1:
            raise ConfigurationError("LeaseTableOptions: read_capacity and write_capacity must be at least 1")
        for key, value in self.tags.items():
            if not key or len(key) > DYNAMODB_TAG_KEY_MAX_CHARS or len(value) > DYNAMODB_TAG_VALUE_MAX_CHARS:
                raise ConfigurationError(f"LeaseTableOptions.tags: {key!r}={value!r} is not a DynamoDB tag "
                                         f"(key 1-{DYNAMODB_TAG_KEY_MAX_CHARS} characters, value up to "
                                         f"{DYNAMODB_TAG_VALUE_MAX_CHARS})")

    @property
    def throughput(self) -> dict[str, int] | None:
        if self.billing_mode != "PROVISIONED":
            return None
        return {"ReadCapacityUnits": self.read_capacity, "WriteCapacityUnits": self.write_capacity}

    def create_table_arguments(self) -> dict[str, Any]:
        """The CreateTable arguments these options add (nothing a default table does not need)."""
        args: dict[str, Any] = {"BillingMode": self.billing_mode}
        if self.throughput is not None:
            args["ProvisionedThroughput"] = self.throughput
        if self.deletion_protection:
            args["DeletionProtectionEnabled"] = True
        if self.tags:
            args["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        return args
