"""SAM / CloudFormation templates -> the emulator's mappings (streamkit.aws_lambda.template). No server (~3 s,
most of it cfn-lint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streamkit.aws_lambda.esm_config import EsmConfig
from streamkit.aws_lambda.template import read_template
from streamkit.errors import TemplateError

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
SAM, CFN = TEMPLATES / "pipeline.yaml", TEMPLATES / "pipeline.json"

EXPECTED = {
    "starting_position": "TRIM_HORIZON", "batch_size": 50, "batching_window": 0.0, "parallelization_factor": 2,
    "bisect_on_error": True, "max_retry_attempts": 2, "max_record_age": 3600.0, "report_batch_item_failures": True,
    "tumbling_window": 30.0, "filter_criteria": ('{"data": {"kind": ["reading"]}}',),
    "on_failure": "arn:aws:sqs:us-east-1:123456789012:Failures", "timeout": 30.0, "function_name": "Process",
    "region": "us-east-1", "memory_size": 512,
}


def test_a_sam_template_gives_every_property_of_its_kinesis_event_to_the_emulator() -> None:
    t = read_template(SAM)
    (f,) = t.functions
    assert (f.logical_id, f.handler, f.code_dir, f.memory_size, f.timeout) == ("Process", "app.handler",
                                                                               TEMPLATES / "fn", 512, 30.0)
    assert f.environment == {"STAGE": "dev"}  # from Globals, !Ref of a parameter's Default
    (m,) = f.mappings
    assert m.stream == "readings" and m.settings == EXPECTED and m.enabled
    EsmConfig(**{k: v for k, v in m.settings.items() if k != "on_failure"})  # every setting is one EsmConfig takes
    (s,) = t.streams
    assert (s.name, s.shard_count, s.on_demand) == ("readings", 2, False)


def test_the_same_settings_in_cloudformation_json_with_cdk_asset_metadata_read_the_same() -> None:
    sam, cfn = read_template(SAM), read_template(CFN)
    assert cfn.functions[0].mappings[0].settings == sam.functions[0].mappings[0].settings
    assert cfn.functions[0].code_dir == sam.functions[0].code_dir  # aws:asset:path
    assert cfn.streams == sam.streams


def test_parameter_overrides_and_conditions_are_evaluated() -> None:
    t = read_template(SAM, parameter_overrides={"Stage": "prod", "BatchSize": "500", "StreamName": "other"})
    (m,) = t.functions[0].mappings
    assert m.settings["batch_size"] == 500 and m.settings["batching_window"] == 5.0  # !If [IsProd, 5, 0]
    assert m.stream == "other" and t.functions[0].environment == {"STAGE": "prod"}


def test_what_the_emulator_does_not_apply_is_named_in_one_warning() -> None:
    warning = read_template(SAM).warning()
    assert warning is not None and "\n" not in warning
    assert warning.endswith("Resources.Process.Properties.Events.Readings.Properties.KmsKeyArn")


def test_a_property_the_emulator_lacks_is_named_rather_than_dropped() -> None:
    fields = frozenset({"batch_size", "starting_position", "timeout", "function_name", "region"})
    t = read_template(SAM, esm_fields=fields)
    assert "Resources.Process.Properties.Events.Readings.Properties.FilterCriteria" in t.unsupported
    assert "filter_criteria" not in t.functions[0].mappings[0].settings


@pytest.mark.parametrize(("text", "message"), [
    ("Resources: [\n  - a: !Ref\n", "bad.yaml: line 2: not valid YAML"),
    ("Foo: 1\n", "bad.yaml: not a CloudFormation or SAM template (no Resources mapping)"),
    ("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: a.b\n      Events:\n"
     "        E:\n          Type: Kinesis\n          Properties:\n            Stream: !GetAtt Nope.Arn\n"
     "            StartingPosition: LATEST\n",
     "bad.yaml: Resources.F.Properties.Events.E.Properties.Stream: 'Nope' is neither a parameter nor a resource"),
    ("Parameters:\n  P: {Type: String}\nResources:\n  S:\n    Type: AWS::Kinesis::Stream\n    Properties:\n"
     "      Name: !Ref P\n",
     "bad.yaml: Resources.S.Properties.Name: parameter P has no Default: give --parameter-overrides P=VALUE"),
    ("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: a.b\n      Events:\n"
     "        E:\n          Type: Kinesis\n          Properties:\n            Stream: arn:aws:kinesis:us-east-1:"
     "000000000000:stream/s\n            StartingPosition: LATEST\n            Enabled: maybe\n",
     "bad.yaml: Resources.F.Properties.Events.E.Properties.Enabled: cannot be read: expected true or false"),
])
def test_a_template_that_cannot_be_read_is_one_line_with_the_file_and_the_path(tmp_path: Path, text: str,
                                                                               message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(TemplateError) as caught:
        read_template(bad)
    assert str(caught.value).startswith(f"{tmp_path}/{message}") and "\n" not in str(caught.value)


def test_an_override_of_a_parameter_the_template_does_not_declare_is_refused() -> None:
    with pytest.raises(TemplateError, match="--parameter-overrides names Nope"):
        read_template(SAM, parameter_overrides={"Nope": "1"})


def test_cfn_lint_passes_on_the_example_templates() -> None:
    from cfnlint.api import lint_file

    example = TEMPLATES.parents[1] / "examples" / "sensor-pipeline" / "template.yaml"
    for path in (SAM, CFN, TEMPLATES / "dispatch.yaml", example):
        assert [str(m) for m in lint_file(path)] == [], path


def sam_transform(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """SAM's own translator (aws-sam-translator, what `sam deploy` runs), with CodeUri packaged as `sam package`
    would have it."""
    from samtranslator.translator.transform import transform

    from streamkit.aws_lambda.template import _load

    class NoPolicies:
        def load(self) -> dict[str, str]:
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    doc = _load(path)
    for res in doc["Resources"].values():
        if res.get("Type") == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://bucket/fn.zip"
    return dict(transform(doc, {}, NoPolicies()))


def test_sams_translator_accepts_the_example_application(monkeypatch: pytest.MonkeyPatch) -> None:
    example = TEMPLATES.parents[1] / "examples" / "sensor-pipeline" / "template.yaml"
    out = sam_transform(example, monkeypatch)
    kinds = sorted(r["Type"] for r in out["Resources"].values())
    assert kinds.count("AWS::Lambda::EventSourceMapping") == 2 and kinds.count("AWS::Lambda::Function") == 3


def test_sams_own_translation_of_the_template_maps_to_the_same_settings(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The SAM template read directly, and SAM's CloudFormation output read as CloudFormation: one mapping."""
    out = tmp_path / "translated.json"
    out.write_bytes(orjson.dumps(sam_transform(SAM, monkeypatch)))
    assert read_template(out).functions[0].mappings[0].settings == read_template(SAM).functions[0].mappings[0].settings


def test_sams_translator_refuses_a_property_its_kinesis_event_does_not_have(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from samtranslator.public.exceptions import InvalidDocumentException

    bad = tmp_path / "bad.yaml"
    bad.write_text(SAM.read_text().replace("BatchSize: !Ref BatchSize", "BatchSizes: 3"))
    with pytest.raises(InvalidDocumentException):
        sam_transform(bad, monkeypatch)


def test_the_example_written_as_cloudformation_json_reads_as_the_same_mappings(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's SAM template, and SAM's CloudFormation output of it with CDK-style asset paths: the same
    functions, code, environment and mapping settings, so `lambda run --template` runs them the same."""
    example = TEMPLATES.parents[1] / "examples" / "sensor-pipeline" / "template.yaml"
    translated = sam_transform(example, monkeypatch)
    for res in translated["Resources"].values():
        if res["Type"] == "AWS::Lambda::Function":
            res["Metadata"] = {"aws:asset:path": str(example.parent / "functions")}
    out = tmp_path / "sensor-pipeline.template.json"
    out.write_bytes(orjson.dumps(translated))
    sam, cfn = read_template(example), read_template(out)
    assert [f.logical_id for f in sam.functions] == [f.logical_id for f in cfn.functions] == ["ProcessReadings",
                                                                                           "Dispatch"]
    for a, b in zip(sam.functions, cfn.functions, strict=True):
        assert (a.handler, a.code_dir, a.environment, a.memory_size, a.timeout) == \
            (b.handler, b.code_dir, b.environment, b.memory_size, b.timeout)
        assert [(m.stream, m.settings) for m in a.mappings] == [(m.stream, m.settings) for m in b.mappings]
