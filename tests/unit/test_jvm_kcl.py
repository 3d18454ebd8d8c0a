"""The JVM KCL runner's checks before it starts anything: Java 17, the pinned jars, the properties. < 1 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamkit.errors import ConfigurationError
from streamkit.local import jvm_kcl
from streamkit.local.jvm_kcl import JvmKcl, JvmKclConfig


def config(**kw: object) -> JvmKclConfig:
    base: dict[str, object] = dict(application_name="app", stream_name="s", processor="python p.py",
                                   kinesis_endpoint="http://127.0.0.1:1", dynamodb_endpoint="http://127.0.0.1:2")
    return JvmKclConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def fresh_checks() -> object:
    jvm_kcl.java_executable.cache_clear()
    jvm_kcl.kcl_jars.cache_clear()
    yield
    jvm_kcl.java_executable.cache_clear()
    jvm_kcl.kcl_jars.cache_clear()


def test_without_java_the_runner_says_so_in_one_line_and_starts_nothing(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ConfigurationError, match="needs Java 17") as err:
        JvmKcl(config(), work_dir=tmp_path / "w").start()
    assert "\n" not in str(err.value)
    assert not (tmp_path / "w").exists()


def test_an_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ConfigurationError, match=r"needs Java 17\+; .* \"11\.0\.2"):
        jvm_kcl.java_executable()


def test_the_installed_jars_are_the_pinned_kcl_3_1_3() -> None:
    jars = jvm_kcl.kcl_jars()  # kclpy-ext is a dev dependency: missing, this fails with the pip line
    assert (jars / f"amazon-kinesis-client-multilang-{jvm_kcl.KCL_VERSION}.jar").exists()


def test_a_jar_with_another_digest_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lines = jvm_kcl._MANIFEST.read_text().splitlines()
    changed = [line if not line.startswith("amazon-kinesis-client-3") else line.split()[0] + " " + "0" * 64
               for line in lines]
    manifest = tmp_path / "kcl_jars.txt"
    manifest.write_text("\n".join(changed) + "\n")
    monkeypatch.setattr(jvm_kcl, "_MANIFEST", manifest)
    with pytest.raises(ConfigurationError, match=r"amazon-kinesis-client-3\.1\.3\.jar does not have the SHA-256"):
        jvm_kcl.kcl_jars()


def test_properties_set_a_shutdown_grace_and_low_timings_and_take_overrides() -> None:
    props = config(worker_id="w1", extra={"maxLeasesForWorker": "5"}).properties()
    assert int(props["shutdownGraceMillis"]) > 0
    assert int(props["failoverTimeMillis"]) <= 3000 and props["workerId"] == "w1"
    assert props["maxLeasesForWorker"] == "5" and props["metricsLevel"] == "NONE"


def test_a_missing_endpoint_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="dynamodb_endpoint is required"):
        config(dynamodb_endpoint="")
