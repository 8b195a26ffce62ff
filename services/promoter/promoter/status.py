"""What the promoter reports about itself: each partition's snapshots for
/readyz and /v1/status, and the gauges read at each /metrics scrape."""

from datetime import datetime, timezone

from aiokafka import TopicPartition

from modelog_platform import metrics
from modelog_platform.settings import COMMANDS_TOPIC
from promoter.loop import Promoter


def snapshot_report(promoter: Promoter) -> dict:
    """Per partition: the snapshot its restore used (or the whole log), those
    it refused and why, and the newest snapshot this process wrote, with its age."""
    now = datetime.now(timezone.utc)
    report = {}
    for partition in sorted(promoter.deciders):
        restored, writer = promoter.restored_from.get(partition), promoter.snapshots.get(partition)
        newest = writer.newest if writer else None
        report[str(partition)] = {
            "restored_from": restored.snapshot if restored else None,
            "refused": [{"snapshot": key, "why": why} for key, why in restored.refused] if restored else [],
            "restore_s": restored.seconds if restored else None,
            "heads_unchecked": len(promoter.unverified.get(partition, {})),
            "models_as_json": len(promoter.deciders[partition].states.stored),
            "newest_written": newest[0] if newest else None,
            "newest_written_age_s": round((now - newest[1]).total_seconds(), 1) if newest else None,
        }
    return report


def report_metrics(promoter: Promoter) -> None:
    """For a scrape: commands not yet decided per partition held, and the
    age of each partition's newest snapshot written here."""
    consumer, now = promoter.consumer, datetime.now(timezone.utc)
    if consumer is not None:
        metrics.consumer_lag("promoter", COMMANDS_TOPIC,
                             lambda p: consumer.last_stable_offset(TopicPartition(COMMANDS_TOPIC, p)),
                             {p: d.next_offset for p, d in promoter.deciders.items()})
    metrics.SNAPSHOT_AGE.clear()
    for partition, writer in list(promoter.snapshots.items()):
        if writer.newest:
            metrics.SNAPSHOT_AGE.labels(str(partition)).set((now - writer.newest[1]).total_seconds())
