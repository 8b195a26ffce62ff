from modelog_contract.domain.idempotency import IdempotencyWindow
from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, LogTrustSettings, LogWriterSettings, ServicePorts


class PromoterSettings(EngineEndpoints, ServicePorts, IdentitySettings, LogWriterSettings, LogTrustSettings):
    """Everything the promoter reads from its environment."""

    promoter_group_id: str = "modelog-promoter"
    # Kafka static membership (group.instance.id): a promoter restarted under
    # the same id takes its partitions back at once, where a new member waits
    # for its dead predecessor's session to expire first. It must be unique
    # among running promoters and stable across restarts of one (the local
    # stack names each instance; a StatefulSet pod's name). Unset: dynamic
    # membership. A promoter stopped for good under an id keeps its partitions
    # until its session times out (6 s), as a killed one does.
    promoter_instance_id: str | None = None
    # Commands decided per transaction at most: bigger batches, fewer commits.
    promoter_max_batch: int = 500
    # Refuse (CommandRejected, reason unauthenticated) every command whose
    # token does not prove its actor. Off only for a stack without identities.
    require_signed_commands: bool = True
    # Longest a command's token may still be valid when it is decided: bounds
    # how long spent token ids are remembered (see promoter.authentication).
    command_token_max_ttl_s: float = 3600
    # Snapshots of each partition's state (see promoter.snapshotting): one is
    # written once this many events were appended since the last, or this many
    # seconds passed with something new; 0 turns that trigger off (both 0: no
    # snapshots, and every restart folds the whole log).
    snapshot_every_events: int = 50_000
    snapshot_every_s: float = 600
    # Snapshots kept per partition, newest first: a refused one falls back to the next.
    snapshot_keep: int = 3
    # Command ids each model remembers, so a retry acts once (docs/idempotency.md):
    # the newest this many, decided at most this many seconds before the
    # model's newest event. A snapshot folded under another window is not used.
    idempotency_window_commands: int = 1000
    idempotency_window_s: float = 86_400

    @property
    def idempotency_window(self) -> IdempotencyWindow:
        return IdempotencyWindow(commands=self.idempotency_window_commands, seconds=self.idempotency_window_s)
