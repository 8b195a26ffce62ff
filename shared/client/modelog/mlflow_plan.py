"""What an import from an MLflow registry writes to modelog: the plan, given
what MLflow holds and what modelog holds already.

Pure: no I/O, so a second import of the same registry plans nothing and the
tests can say so without a server. The import never overwrites what modelog
holds: it writes only what is missing, and says of everything else it leaves
why (a value modelog holds differently, a name modelog refuses, a version
modelog numbered otherwise). docs/mlflow-import.md tells the whole story.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# modelog's names (modelog_contract/domain/types.py; the client does not
# depend on the contract, so the patterns are repeated here).
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TAG_KEY_MAX, TAG_VALUE_MAX = 250, 5000
# Tags under this prefix are modelog's own facts (an MLflow version's source,
# run_link and logged model id): never compared, and never set by an import.
MODELOG_TAG_PREFIX = "modelog."
PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow 3 keeps prompts in the model registry


@dataclass(frozen=True)
class MlflowVersion:
    version: int
    source: str
    run_id: str = ""
    run_link: str = ""
    model_id: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    stage: str = "None"
    status: str = "READY"


@dataclass(frozen=True)
class MlflowModel:
    name: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    versions: tuple[MlflowVersion, ...] = ()


@dataclass(frozen=True)
class ModelogVersion:
    version: int
    run_id: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    stage: str = "None"
    deleted: bool = False
    aliases: tuple[str, ...] = ()
    source: str | None = None  # the MLflow source it was registered with; None: registered otherwise


@dataclass(frozen=True)
class ModelogModel:
    name: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    deleted: bool = False
    versions: tuple[ModelogVersion, ...] = ()


# -- what the import writes, in the order it writes it ---------------------------

@dataclass(frozen=True)
class CreateModel:
    model: str
    description: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class DescribeModel:
    model: str
    description: str


@dataclass(frozen=True)
class TagModel:
    model: str
    key: str
    value: str


@dataclass(frozen=True)
class RegisterVersion:
    """Register MLflow's version through modelog's MLflow API, which copies and
    hashes the artifacts it can read; modelog must number it `version`."""

    model: str
    version: int
    source: str
    run_id: str
    run_link: str
    model_id: str
    description: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class RegisterDeleted:
    """A version MLflow no longer has (deleted there, or never ready): registered
    and deleted, so the versions after it keep MLflow's numbers."""

    model: str
    version: int
    why: str


@dataclass(frozen=True)
class DescribeVersion:
    model: str
    version: int
    description: str


@dataclass(frozen=True)
class TagVersion:
    model: str
    version: int
    key: str
    value: str


@dataclass(frozen=True)
class ImportStage:
    model: str
    version: int
    stage: str


@dataclass(frozen=True)
class SetAlias:
    model: str
    alias: str
    version: int


Step = (CreateModel | DescribeModel | TagModel | RegisterVersion | RegisterDeleted | DescribeVersion
        | TagVersion | ImportStage | SetAlias)


@dataclass(frozen=True)
class Skipped:
    """Something MLflow holds that the import leaves alone, and why."""

    what: str
    why: str


@dataclass(frozen=True)
class ModelPlan:
    model: str
    steps: tuple[Step, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    present: int = 0  # facts MLflow holds that modelog holds already


def plan(mlflow: Iterable[MlflowModel], modelog: Mapping[str, ModelogModel]) -> list[ModelPlan]:
    """A plan per MLflow model, in name order."""
    return [plan_model(m, modelog.get(m.name)) for m in sorted(mlflow, key=lambda m: m.name)]


def plan_model(source: MlflowModel, target: ModelogModel | None) -> ModelPlan:
    name = source.name
    if source.tags.get(PROMPT_TAG, "").lower() == "true":
        return _left(name, "an MLflow prompt, not a model: modelog registers models only")
    if not MODEL_NAME.fullmatch(name):
        return _left(name, "modelog's model names are 1-128 letters, digits, '.', '_' or '-', starting with "
                           "a letter or digit: rename it in MLflow, then import again")
    if target is not None and target.deleted:
        return _left(name, "a model of this name was deleted in modelog, and a deleted model's name is not "
                           "used again")
    facts = _Facts(name)
    if target is None:
        tags = {k: v for k, v in sorted(source.tags.items()) if facts.tag_fits(f"model tag {k!r}", k, v)}
        facts.write(CreateModel(name, source.description, tags))
        target = ModelogModel(name)
    else:
        facts.fill(f"{name}'s description", source.description or None, target.description or None,
                   DescribeModel(name, source.description))
        for key, value in sorted(source.tags.items()):
            if facts.tag_fits(f"model tag {key!r}", key, value):
                facts.fill(f"model tag {key!r}", value, target.tags.get(key), TagModel(name, key, value))
    matched = _versions(source, target, facts)
    _aliases(source, target, matched, facts)
    return facts.plan()


def _versions(source: MlflowModel, target: ModelogModel, facts: "_Facts") -> set[int]:
    """Register what is missing, fill in what modelog's versions lack; the
    numbers of MLflow's versions that are modelog's versions too."""
    name = source.name
    theirs = {v.version: v for v in source.versions}
    ours = {v.version: v for v in target.versions}
    matched: set[int] = set()
    stages: list[ImportStage] = []
    for number in range(1, max(theirs, default=0) + 1):
        version, kept = theirs.get(number), ours.get(number)
        what = f"version {number}"
        if version is None or version.status != "READY":
            why = (f"MLflow's version {number} is {version.status}" if version
                   else f"MLflow has no version {number} (deleted there)")
            if kept is None:
                facts.write(RegisterDeleted(name, number, why))
            elif kept.deleted:
                facts.present += 1
            else:
                facts.skip(what, f"{why}, but modelog's version {number} is live: left as it is")
            continue
        if kept is None:
            tags = {k: v for k, v in sorted(version.tags.items()) if facts.tag_fits(f"{what} tag {k!r}", k, v)}
            facts.write(RegisterVersion(name, number, version.source, version.run_id, version.run_link,
                                        version.model_id, version.description, tags))
            kept = ModelogVersion(number, run_id=version.run_id, description=version.description, tags=tags,
                                  source=version.source)
        elif other := _other_version(version, kept):
            facts.skip(what, other)
            continue
        else:
            facts.present += 1
            facts.fill(f"{what}'s description", version.description or None, kept.description or None,
                       DescribeVersion(name, number, version.description))
            for key, value in sorted(version.tags.items()):
                if facts.tag_fits(f"{what} tag {key!r}", key, value):
                    facts.fill(f"{what} tag {key!r}", value, kept.tags.get(key), TagVersion(name, number, key, value))
        matched.add(number)
        if version.stage == kept.stage:
            facts.present += version.stage != "None"
        elif kept.stage == "None":
            stages.append(ImportStage(name, number, version.stage))
        else:
            facts.skip(f"{what}'s stage", f"MLflow has it in {version.stage}, modelog in {kept.stage}: "
                                          "a move made in modelog stands")
    for stage in stages:  # once every version is registered
        facts.write(stage)
    return matched


def _other_version(version: MlflowVersion, kept: ModelogVersion) -> str:
    """Why modelog's version of this number is not MLflow's; '' if it is."""
    number = version.version
    if kept.deleted:
        return f"modelog's version {number} was deleted: a deleted version takes no more changes"
    source = kept.source
    if (source is not None and source != version.source) or (kept.run_id or "") != version.run_id:
        return (f"modelog's version {number} is another model (run {kept.run_id or 'none'}"
                + (f", source {source}" if source else "") + f"; MLflow's: run {version.run_id or 'none'}, "
                f"source {version.source}): modelog numbers versions in the order they came, so this one "
                "cannot keep MLflow's number")
    return ""


def _aliases(source: MlflowModel, target: ModelogModel, matched: set[int], facts: "_Facts") -> None:
    held = {alias: v.version for v in target.versions for alias in v.aliases}
    for alias, number in sorted(source.aliases.items()):
        what = f"alias @{alias}"
        if not ALIAS_NAME.fullmatch(alias):
            facts.skip(what, "modelog's aliases are 1-64 lower-case letters, digits, '_' or '-', starting "
                             "with a letter")
        elif number not in matched:
            facts.skip(what, f"it points at version {number}, which the import did not bring over")
        elif alias not in held:
            facts.write(SetAlias(source.name, alias, number))
        elif held[alias] == number:
            facts.present += 1
        else:
            facts.skip(what, f"MLflow points it at version {number}, modelog at version {held[alias]}: "
                             "modelog's kept")


class _Facts:
    """The plan of one model as it is built."""

    def __init__(self, model: str):
        self.model, self.present = model, 0
        self.steps: list[Step] = []
        self.skipped: list[Skipped] = []

    def write(self, step: Step) -> None:
        self.steps.append(step)

    def skip(self, what: str, why: str) -> None:
        self.skipped.append(Skipped(what, why))

    def fill(self, what: str, wanted: str | None, held: str | None, step: Step) -> None:
        """Write `wanted` where modelog holds nothing (None; an empty description
        is none, an empty tag value is a value); keep what it holds otherwise."""
        if wanted is None:
            return
        if wanted == held:
            self.present += 1
        elif held is None:
            self.write(step)
        else:
            self.skip(what, f"modelog holds another value ({_short(held)}; MLflow's: {_short(wanted)}): "
                            "modelog's kept")

    def tag_fits(self, what: str, key: str, value: str) -> bool:
        if key.startswith(MODELOG_TAG_PREFIX):
            self.skip(what, f"tags under {MODELOG_TAG_PREFIX!r} are modelog's own")
        elif not 1 <= len(key) <= TAG_KEY_MAX:
            self.skip(what, f"modelog's tag keys are 1-{TAG_KEY_MAX} characters")
        elif len(value) > TAG_VALUE_MAX:
            self.skip(what, f"its value is {len(value):,} characters; modelog's are at most {TAG_VALUE_MAX:,}")
        else:
            return True
        return False

    def plan(self) -> ModelPlan:
        return ModelPlan(self.model, tuple(self.steps), tuple(self.skipped), self.present)


def _left(model: str, why: str) -> ModelPlan:
    return ModelPlan(model, skipped=(Skipped(f"model {model}", why),))


def _short(text: str, most: int = 40) -> str:
    return repr(text if len(text) <= most else text[:most] + "…")
