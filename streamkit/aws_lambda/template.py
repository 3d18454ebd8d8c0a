"""SAM and CloudFormation templates -> the functions, Kinesis mappings and streams the emulator runs.

Reads ``AWS::Serverless::Function`` (``Events`` of ``Type: Kinesis``, ``Globals``) and ``AWS::Lambda::Function``
with ``AWS::Lambda::EventSourceMapping``, in YAML (CloudFormation's short tags: ``!Ref``, ``!GetAtt``,
``!Sub``, ...) or JSON (CDK's ``cdk.out/*.template.json``, code found through ``aws:asset:path``).
Evaluates what is needed to find streams and destinations: ``Ref``, ``Fn::GetAtt`` (``.Arn``),
``Fn::Sub``, ``Fn::Join``, ``Fn::If`` with the template's ``Conditions``, ``Fn::Select``, ``Fn::Split``,
``Fn::FindInMap``, parameters (their ``Default``, or an override) and the pseudo parameters.

Every mapping property the emulator's `EsmConfig` has is applied; every other one is collected in
`Template.unsupported`, for one warning. A template that cannot be read raises `TemplateError`: one
line with the file and the path inside it. Pure: reading the file is the only I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamkit.errors import TemplateError

__all__ = ["FunctionSpec", "MappingSpec", "StreamSpec", "Template", "TemplateError", "read_template"]

ACCOUNT = "123456789012"
STACK = "streamkit-local"
_NO_VALUE = object()  # AWS::NoValue: the property is dropped

#: Kinesis event / EventSourceMapping property -> EsmConfig field, and how its value is read.
_ESM_PROPERTIES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "BatchSize": ("batch_size", int),
    "MaximumBatchingWindowInSeconds": ("batching_window", float),
    "ParallelizationFactor": ("parallelization_factor", int),
    "BisectBatchOnFunctionError": ("bisect_on_error", lambda v: _bool(v)),
    "MaximumRetryAttempts": ("max_retry_attempts", int),
    "MaximumRecordAgeInSeconds": ("max_record_age", float),
    "TumblingWindowInSeconds": ("tumbling_window", float),
    "FilterCriteria": ("filter_criteria", lambda v: tuple(f["Pattern"] for f in (v or {}).get("Filters", []))),
    "StartingPositionTimestamp": ("starting_position_timestamp", float),
}
#: Accepted and said not to be emulated (they change nothing a local run can show).
_NOT_EMULATED = {"KmsKeyArn", "MetricsConfig", "ScalingConfig", "Tags", "ProvisionedPollerConfig",
                 "SourceAccessConfigurations", "Queues", "Topics", "DocumentDBEventSourceConfig",
                 "SelfManagedEventSource", "SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig"}
#: Read by the mapping itself (not EsmConfig fields).
_MAPPING_OWN = {"Stream", "EventSourceArn", "FunctionName", "StartingPosition", "DestinationConfig",
                "FunctionResponseTypes", "Enabled"}


@dataclass(frozen=True, kw_only=True)
class StreamSpec:
    """An ``AWS::Kinesis::Stream`` of the template, to create on the local stack."""

    logical_id: str
    name: str
    shard_count: int | None  # None: on-demand
    on_demand: bool = False
    max_record_size_kib: int | None = None


@dataclass(frozen=True, kw_only=True)
class MappingSpec:
    """One Kinesis event source mapping: its stream and its `EsmConfig` settings (AWS names mapped)."""

    name: str  # "FunctionLogicalId/EventName" (SAM) or the mapping's logical id (CloudFormation)
    stream: str  # the stream's name (from its ARN or Ref)
    settings: dict[str, Any]
    enabled: bool = True


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    logical_id: str
    function_name: str
    handler: str  # Lambda's form, "module.function"
    code_dir: Path | None
    runtime: str | None = None
    memory_size: int = 128  # Lambda's default
    timeout: float = 3.0  # Lambda's default
    environment: dict[str, str] = field(default_factory=dict)
    mappings: tuple[MappingSpec, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Template:
    path: Path
    functions: tuple[FunctionSpec, ...]
    streams: tuple[StreamSpec, ...]
    #: Queues, topics and buckets the template declares: logical id -> (type, physical name).
    resources: dict[str, tuple[str, str]]
    #: Where properties the emulator does not apply are ("Resources.Fn.Properties.Events.E.Properties.KmsKeyArn").
    unsupported: tuple[str, ...] = ()
    #: The functions without a Kinesis event (invoked by others: a dispatcher's Lambda target, say).
    other_functions: tuple[FunctionSpec, ...] = ()

    def function(self, logical_id: str) -> FunctionSpec:
        for f in self.functions:
            if f.logical_id == logical_id:
                return f
        names = ", ".join(f.logical_id for f in self.functions) or "none"
        raise TemplateError(f"{self.path}: no function {logical_id!r} with a Kinesis event (functions with one: {names})")

    def warning(self) -> str | None:
        """One line naming every property that is read but not emulated, or None."""
        if not self.unsupported:
            return None
        return f"{self.path}: not emulated (accepted, no effect locally): {', '.join(self.unsupported)}"


def read_template(path: str | Path, *, parameter_overrides: Mapping[str, str] | None = None,
                  region: str = "us-east-1", esm_fields: frozenset[str] | None = None) -> Template:
    """Read a SAM or CloudFormation template; `esm_fields`: the EsmConfig fields the emulator has (default:
    those of `streamkit.aws_lambda.esm_config.EsmConfig`), so what it cannot apply is named."""
    p = Path(path)
    if esm_fields is None:
        from streamkit.aws_lambda.esm_config import EsmConfig

        esm_fields = frozenset(f.name for f in dataclasses.fields(EsmConfig))
    doc = _load(p)
    return _Reader(p, doc, dict(parameter_overrides or {}), region, esm_fields).read()


# -- loading ---------------------------------------------------------------------------------------------
def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read the template: {exc.strerror or exc}") from None
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        import orjson

        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise TemplateError(f"{path}: not valid JSON: {exc}") from None
    else:
        doc = _load_yaml(path, text)
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation or SAM template (no Resources mapping)")
    return doc


def _load_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise TemplateError(f"{path}: reading YAML templates needs PyYAML: pip install 'streamkit[templates]'") \
            from None

    class Loader(yaml.SafeLoader):
        """PyYAML with CloudFormation's short intrinsic tags (``!Ref X`` -> ``{"Ref": "X"}``)."""

    def construct(tag: str) -> Callable[[Any, Any], Any]:
        def build(loader: Any, node: Any) -> Any:
            if isinstance(node, yaml.ScalarNode):
                value: Any = loader.construct_scalar(node)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            if tag == "Ref":
                return {"Ref": value}
            if tag == "Condition":
                return {"Condition": value}
            if tag == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
            return {f"Fn::{tag}": value}
        return build

    for tag in ("Ref", "Condition", "GetAtt", "Sub", "Join", "If", "Equals", "Not", "And", "Or", "Select", "Split",
                "FindInMap", "ImportValue", "Base64", "GetAZs", "Cidr", "Length", "ToJsonString", "Transform"):
        Loader.add_constructor(f"!{tag}", construct(tag))
    # CloudFormation reads 2024-01-01 as a string, not a date.
    Loader.yaml_implicit_resolvers = {k: [(t, r) for t, r in v if t != "tag:yaml.org,2002:timestamp"]
                                      for k, v in Loader.yaml_implicit_resolvers.items()}
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise TemplateError(f"{path}: {where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


# -- reading -------------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, path: Path, doc: dict[str, Any], overrides: dict[str, str], region: str,
                 esm_fields: frozenset[str]) -> None:
        self.path = path
        self.doc = doc
        self.region = region
        self.esm_fields = esm_fields
        self.resources: dict[str, Any] = doc["Resources"]
        self.params = self._parameters(overrides)
        self.conditions: dict[str, bool] = {}
        self.unsupported: list[str] = []

    def fail(self, where: str, problem: str) -> TemplateError:
        return TemplateError(f"{self.path}: {where}: {problem}")

    def _parameters(self, overrides: dict[str, str]) -> dict[str, Any]:
        declared = self.doc.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise self.fail("Parameters", f"--parameter-overrides names {', '.join(unknown)}, which the template does "
                                          f"not declare (it declares: {', '.join(declared) or 'none'})")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                values[name] = overrides[name]
            elif isinstance(spec, dict) and "Default" in spec:
                values[name] = spec["Default"]
            else:
                values[name] = None  # an error only where it is used
            if isinstance(spec, dict) and spec.get("AllowedValues") and values[name] is not None and \
                    str(values[name]) not in [str(v) for v in spec["AllowedValues"]]:
                raise self.fail(f"Parameters.{name}", f"{values[name]!r} is not one of its AllowedValues "
                                                      f"{spec['AllowedValues']}")
        return values

    # -- intrinsics ------------------------------------------------------------------------------------
    def condition(self, name: str, where: str) -> bool:
        if name not in self.conditions:
            spec = (self.doc.get("Conditions") or {}).get(name)
            if spec is None:
                raise self.fail(where, f"condition {name!r} is not in Conditions")
            self.conditions[name] = bool(self.evaluate(spec, f"Conditions.{name}"))
        return self.conditions[name]

    def physical_name(self, logical_id: str, where: str) -> tuple[str, str]:
        """(type, name) of a resource as Ref names it: a stream's, queue's, topic's or function's name."""
        res = self.resources.get(logical_id)
        if not isinstance(res, dict):
            raise self.fail(where, f"{logical_id!r} is neither a parameter nor a resource of the template")
        kind = str(res.get("Type", ""))
        props = res.get("Properties") or {}
        key = {"AWS::Kinesis::Stream": "Name", "AWS::SQS::Queue": "QueueName", "AWS::SNS::Topic": "TopicName",
               "AWS::S3::Bucket": "BucketName", "AWS::Lambda::Function": "FunctionName",
               "AWS::Serverless::Function": "FunctionName"}.get(kind)
        name = props.get(key) if key else None
        if name is not None:
            name = self.evaluate(name, f"Resources.{logical_id}.Properties.{key}")
        else:
            name = logical_id.lower() if kind == "AWS::S3::Bucket" else logical_id  # CloudFormation would add a suffix
        return kind, str(name)

    def ref(self, name: str, where: str) -> Any:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": _NO_VALUE,
                  "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT}:stack/{STACK}/local"}
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            if self.params[name] is None:
                raise self.fail(where, f"parameter {name} has no Default: give --parameter-overrides {name}=VALUE")
            return self.params[name]
        kind, physical = self.physical_name(name, where)
        if kind == "AWS::SNS::Topic":
            return self.arn(kind, physical)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{physical}"
        return physical

    def arn(self, kind: str, name: str) -> str:
        r, a = self.region, ACCOUNT
        return {"AWS::Kinesis::Stream": f"arn:aws:kinesis:{r}:{a}:stream/{name}",
                "AWS::SQS::Queue": f"arn:aws:sqs:{r}:{a}:{name}",
                "AWS::SNS::Topic": f"arn:aws:sns:{r}:{a}:{name}",
                "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
                "AWS::Lambda::Function": f"arn:aws:lambda:{r}:{a}:function:{name}",
                "AWS::Serverless::Function": f"arn:aws:lambda:{r}:{a}:function:{name}"}.get(kind, "")

    def get_att(self, logical_id: str, attribute: str, where: str) -> str:
        kind, name = self.physical_name(logical_id, where)
        if attribute == "Arn" and self.arn(kind, name):
            return self.arn(kind, name)
        if (kind, attribute) in (("AWS::SQS::Queue", "QueueName"), ("AWS::SNS::Topic", "TopicName")):
            return name
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueUrl"):
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{name}"
        raise self.fail(where, f"Fn::GetAtt {logical_id}.{attribute} is not one streamkit can evaluate locally "
                               "(it knows .Arn of streams, queues, topics, buckets and functions)")

    def sub(self, value: Any, where: str) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
        variables = {k: self.evaluate(v, f"{where}.{k}") for k, v in variables.items()}

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                res, attr = name.split(".", 1)
                return self.get_att(res, attr, where)
            return str(self.ref(name, where))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def evaluate(self, node: Any, where: str) -> Any:
        """`node` with every intrinsic function evaluated (AWS::NoValue dropped)."""
        if isinstance(node, list):
            out = [self.evaluate(v, f"{where}[{i}]") for i, v in enumerate(node)]
            return [v for v in out if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(str(arg), where)
            if key == "Condition":
                return self.condition(str(arg), where)
            if key.startswith("Fn::"):
                return self.function(key, arg, where)
        evaluated = {k: self.evaluate(v, f"{where}.{k}") for k, v in node.items()}
        return {k: v for k, v in evaluated.items() if v is not _NO_VALUE}

    def function(self, key: str, arg: Any, where: str) -> Any:
        try:
            if key == "Fn::GetAtt":
                res, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(str(res), str(self.evaluate(attr, where)), where)
            if key == "Fn::Sub":
                return self.sub(arg, where)
            if key == "Fn::Join":
                delim, items = arg
                return str(delim).join(str(v) for v in self.evaluate(items, where))
            if key == "Fn::If":
                cond, yes, no = arg
                return self.evaluate(yes if self.condition(str(cond), where) else no, where)
            if key == "Fn::Equals":
                a, b = (self.evaluate(v, where) for v in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.evaluate(arg[0], where)
            if key == "Fn::And":
                return all(self.evaluate(v, where) for v in arg)
            if key == "Fn::Or":
                return any(self.evaluate(v, where) for v in arg)
            if key == "Fn::Select":
                index, items = arg
                return self.evaluate(items, where)[int(self.evaluate(index, where))]
            if key == "Fn::Split":
                delim, text = arg
                return str(self.evaluate(text, where)).split(str(delim))
            if key == "Fn::FindInMap":
                m, k1, k2 = (self.evaluate(v, where) for v in arg)
                return self.doc["Mappings"][m][k1][k2]
        except TemplateError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise self.fail(where, f"{key} cannot be evaluated: {exc!r}") from None
        raise self.fail(where, f"{key} is not evaluated by streamkit (it evaluates Ref, Fn::GetAtt, Fn::Sub, Fn::Join, "
                               "Fn::If, Fn::Select, Fn::Split, Fn::FindInMap and conditions)")

    # -- resources -------------------------------------------------------------------------------------
    def live(self, logical_id: str, res: dict[str, Any]) -> bool:
        cond = res.get("Condition")
        return cond is None or self.condition(str(cond), f"Resources.{logical_id}.Condition")

    def read(self) -> Template:
        streams: list[StreamSpec] = []
        functions: list[FunctionSpec] = []
        invocable: list[FunctionSpec] = []
        others: dict[str, tuple[str, str]] = {}
        cfn_mappings: dict[str, list[MappingSpec]] = {}
        for lid, res in self.resources.items():
            if not isinstance(res, dict) or not self.live(lid, res):
                continue
            kind = res.get("Type")
            if kind == "AWS::Kinesis::Stream":
                streams.append(self.stream(lid, res))
            elif kind in ("AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::S3::Bucket"):
                others[lid] = self.physical_name(lid, f"Resources.{lid}")
            elif kind == "AWS::Lambda::EventSourceMapping":
                where = f"Resources.{lid}.Properties"
                props = self.evaluate(res.get("Properties") or {}, where)
                target = str(props.get("FunctionName", ""))
                if ":stream/" not in str(props.get("EventSourceArn", "")):
                    continue  # not a Kinesis mapping (SQS, DynamoDB streams, Kafka)
                cfn_mappings.setdefault(target.rpartition(":")[2], []).append(self.mapping(lid, props, where))
        for lid, res in self.resources.items():
            if not isinstance(res, dict) or not self.live(lid, res):
                continue
            if res.get("Type") == "AWS::Serverless::Function":
                f = self.sam_function(lid, res)
            elif res.get("Type") == "AWS::Lambda::Function":
                f = self.cfn_function(lid, res, cfn_mappings)
            else:
                continue
            (functions if f.mappings else invocable).append(f)
        return Template(path=self.path, functions=tuple(functions), streams=tuple(streams), resources=others,
                        unsupported=tuple(self.unsupported), other_functions=tuple(invocable))

    def stream(self, lid: str, res: dict[str, Any]) -> StreamSpec:
        where = f"Resources.{lid}.Properties"
        props = self.evaluate(res.get("Properties") or {}, where)
        mode = (props.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
        on_demand = mode == "ON_DEMAND"
        shards = props.get("ShardCount")
        for name in props:
            if name not in ("Name", "ShardCount", "StreamModeDetails", "MaxRecordSizeInKiB", "RetentionPeriodHours",
                            "Tags"):
                self.unsupported.append(f"{where}.{name}")
        try:
            return StreamSpec(logical_id=lid, name=self.physical_name(lid, where)[1], on_demand=on_demand,
                              shard_count=None if on_demand else int(shards if shards is not None else 1),
                              max_record_size_kib=None if props.get("MaxRecordSizeInKiB") is None
                              else int(props["MaxRecordSizeInKiB"]))
        except ValueError as exc:
            raise self.fail(where, f"not a number: {exc}") from None

    def mapping(self, name: str, props: dict[str, Any], where: str) -> MappingSpec:
        """A Kinesis mapping's properties (already evaluated) -> its stream and EsmConfig settings."""
        stream = props.get("Stream", props.get("EventSourceArn"))
        if not isinstance(stream, str) or not stream:
            raise self.fail(where, "the Kinesis mapping names no stream (Stream / EventSourceArn)")
        settings: dict[str, Any] = {}
        start = str(props.get("StartingPosition", "LATEST")).upper()
        if start == "AT_TIMESTAMP" and "starting_position_timestamp" not in self.esm_fields:
            self.unsupported.append(f"{where}.StartingPosition (AT_TIMESTAMP)")
            start = "TRIM_HORIZON"
        settings["starting_position"] = start
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if on_failure:
            settings["on_failure"] = on_failure
        if "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []):
            settings["report_batch_item_failures"] = True
        for prop, value in props.items():
            if prop in _MAPPING_OWN:
                continue
            spec = _ESM_PROPERTIES.get(prop)
            if spec is None or spec[0] not in self.esm_fields or prop in _NOT_EMULATED:
                self.unsupported.append(f"{where}.{prop}")
                continue
            try:
                settings[spec[0]] = spec[1](value)
            except (ValueError, TypeError, KeyError) as exc:
                raise self.fail(f"{where}.{prop}", f"cannot be read: {exc}") from None
        try:
            enabled = _bool(props.get("Enabled", True))
        except ValueError as exc:
            raise self.fail(f"{where}.Enabled", f"cannot be read: {exc}") from None
        return MappingSpec(name=name, stream=stream.rpartition(":stream/")[2] if ":stream/" in stream else stream,
                           settings=settings, enabled=enabled)

    def sam_function(self, lid: str, res: dict[str, Any]) -> FunctionSpec:
        where = f"Resources.{lid}.Properties"
        glob = ((self.doc.get("Globals") or {}).get("Function") or {})
        raw = {**glob, **(res.get("Properties") or {})}
        if "Environment" in glob and "Environment" in (res.get("Properties") or {}):
            raw["Environment"] = {"Variables": {**(glob["Environment"].get("Variables") or {}),
                                                **(res["Properties"]["Environment"].get("Variables") or {})}}
        events = raw.pop("Events", None) or {}
        props = self.used(raw, where)
        mappings = []
        for event_name, event in events.items():
            if not isinstance(event, dict) or event.get("Type") != "Kinesis":
                continue
            ewhere = f"{where}.Events.{event_name}.Properties"
            mappings.append(self.mapping(f"{lid}/{event_name}", self.evaluate(event.get("Properties") or {}, ewhere),
                                         ewhere))
        code = props.get("CodeUri")
        return self.function_spec(lid, props, where, mappings,
                                  code if isinstance(code, str) else self.asset_path(res))

    def cfn_function(self, lid: str, res: dict[str, Any], mappings: dict[str, list[MappingSpec]]) -> FunctionSpec:
        where = f"Resources.{lid}.Properties"
        props = self.used(res.get("Properties") or {}, where)
        name = self.physical_name(lid, where)[1]
        found = mappings.get(name, []) + (mappings.get(lid, []) if name != lid else [])
        return self.function_spec(lid, props, where, found, self.asset_path(res))

    def used(self, props: dict[str, Any], where: str) -> dict[str, Any]:
        """The function properties a local run uses, evaluated (a Role's or a layer's intrinsics are left alone)."""
        keys = ("Handler", "CodeUri", "Runtime", "MemorySize", "Timeout", "Environment", "FunctionName")
        return {k: self.evaluate(props[k], f"{where}.{k}") for k in keys if k in props}

    def asset_path(self, res: dict[str, Any]) -> str | None:
        """CDK's synthesised templates name the code folder in the resource's metadata."""
        meta = res.get("Metadata") or {}
        value = meta.get("aws:asset:path")
        return str(value) if value else None

    def function_spec(self, lid: str, props: dict[str, Any], where: str, mappings: list[MappingSpec],
                      code: str | None) -> FunctionSpec:
        handler = props.get("Handler")
        if mappings and not isinstance(handler, str):
            raise self.fail(where, "the function has a Kinesis mapping but no Handler")
        env = {str(k): str(v) for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()}
        code_dir = (self.path.parent / code).resolve() if code else None
        try:
            timeout = float(props.get("Timeout", 3))
            memory = int(props.get("MemorySize", 128))
        except (TypeError, ValueError) as exc:
            raise self.fail(where, f"Timeout or MemorySize is not a number: {exc}") from None
        function_name = str(props.get("FunctionName") or lid)
        own = {"timeout": timeout, "function_name": function_name, "region": self.region, "memory_size": memory}
        own = {k: v for k, v in own.items() if k in self.esm_fields}
        fixed = [dataclasses.replace(m, settings={**m.settings, **own}) for m in mappings]
        return FunctionSpec(logical_id=lid, function_name=function_name, handler=str(handler), code_dir=code_dir,
                            runtime=props.get("Runtime"), memory_size=memory, timeout=timeout, environment=env,
                            mappings=tuple(fixed))
