"""The policy in force, said in plain sentences a reviewer reads before acting."""

from modelog_contract.domain.policy import Policy
from modelog_contract.domain.words import joined, stage_words

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def policy_sentences(policy: Policy) -> list[str]:
    said = []
    for stage, count in sorted(policy.approvals_required.items()):
        if count > 0:
            days = policy.approval_ttl_s / 86400
            said.append(f"{stage} needs {count} approval{'s' if count != 1 else ''} from holders of the "
                        f"'{policy.approver_role}' role, none of them the requester or the version's registrant; "
                        f"an approval counts for {days:g} day{'s' if days != 1 else ''}.")
    for stage, thresholds in sorted(policy.metric_thresholds.items()):
        if thresholds:
            said.append(f"{stage} needs {joined((f'{t.metric} {t.op} {t.value:g}' for t in thresholds), 'and')}.")
    if policy.champion is not None:
        better = "higher" if policy.champion.higher_is_better else "lower"
        said.append(f"Production needs a candidate to beat the version in Production on {policy.champion.metric} "
                    f"by at least {policy.champion.margin:g} ({better} is better).")
    if policy.lineage_required_for:
        said.append(f"{joined(policy.lineage_required_for, 'and')} need{'s' if len(policy.lineage_required_for) == 1 else ''} "
                    "lineage: a run id, the dataset's URI and hash, and a model card.")
    if policy.verified_artifact_required_for:
        said.append(f"{joined(policy.verified_artifact_required_for, 'and')} only take versions whose files "
                    "modelog holds and verified.")
    for window in policy.freeze_windows:
        said.append(f"No promotion to Production on {WEEKDAYS[window.weekday]}s from "
                    f"{window.start.strftime('%H:%M')} to {window.end.strftime('%H:%M')} UTC.")
    moves = ", ".join(f"{stage_words(a)} → {b}" for a, b in policy.allowed_transitions)
    said.append(f"Allowed moves: {moves}.")
    said.append("An operator may roll Production back to an Archived version without approvals."
                if policy.rollback_allowed else "Rolling back is not allowed: a version reaches Production "
                                                "only through its approvals.")
    return said
