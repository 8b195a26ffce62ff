"""A token bucket per subject: a burst, then a steady rate. Pure: the bucket is
a value and time is passed in."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    tokens: float
    at: float  # monotonic seconds of the last take


@dataclass(frozen=True)
class Limit:
    rate_per_s: float
    burst: float


def take(bucket: Bucket | None, now: float, limit: Limit) -> tuple[Bucket, float | None]:
    """Take one token. Returns the new bucket and None, or the unchanged bucket
    and how many seconds until a token is there."""
    tokens = limit.burst if bucket is None else min(limit.burst, bucket.tokens + (now - bucket.at) * limit.rate_per_s)
    if tokens >= 1:
        return Bucket(tokens - 1, now), None
    return Bucket(tokens, now), (1 - tokens) / limit.rate_per_s


def full(bucket: Bucket, now: float, limit: Limit) -> bool:
    """A full bucket is the same as none: it can be forgotten."""
    return bucket.tokens + (now - bucket.at) * limit.rate_per_s >= limit.burst
