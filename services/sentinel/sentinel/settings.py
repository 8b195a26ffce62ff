"""Everything the sentinel reads from its environment."""

from pydantic import Field

from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, LogTrustSettings, ServicePorts

SIGNALS_TOPIC = "modelog.signals"
SERVICE_SUBJECT = "modelog-sentinel"  # the actor its decisions are recorded under


class SentinelSettings(EngineEndpoints, ServicePorts, IdentitySettings, LogTrustSettings):
    # The tumbling window signals are summed in. A rule's own window_s spans
    # the newest whole windows it covers; shorter than this, it judges one.
    sentinel_window_s: int = Field(60, ge=1, le=3600)
    # A window is judged this long after it ends: signals still in flight
    # (a per-minute aggregate is published after its minute) are counted.
    sentinel_grace_s: float = Field(2.0, ge=0)
    # How often closed windows are looked for: the decision's delay after grace.
    sentinel_check_every_s: float = Field(0.25, gt=0)
    # Windows kept per (model, version) in the table and shown at /v1/windows;
    # must cover the longest rule window (older signals are dropped as too old).
    sentinel_windows_kept: int = Field(30, ge=1, le=10_000)
    # Signals summed in memory before one table write per key: the changelog
    # carries one record per key a batch touched, not one per signal.
    sentinel_batch: int = Field(5000, ge=1)
    sentinel_batch_within_s: float = Field(0.05, gt=0)
    # Bytes fetched per partition at a time. The consumer sends its next fetch
    # while the last one's records are summed, and that fetch, for partitions
    # with nothing new, waits on the broker (Faust: up to 1.5 s) before the
    # busy partition is asked again: a larger fetch makes that wait rarer.
    # Memory: up to this much per signals partition the sentinel holds.
    sentinel_fetch_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024)
    # How often the book is written to the sentinel's directory (decision
    # 0015) while events come in: a restart folds the log's tail since.
    sentinel_snapshot_every_s: float = Field(600.0, gt=0)
    sentinel_consumer_group: str = "modelog-sentinel"  # also the Faust app id, prefixing its topics
