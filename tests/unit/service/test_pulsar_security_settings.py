"""The Pulsar token and TLS settings: variables and flags, their checks, the options they become,
and the token kept out of every ``repr``, log line and error.

Variables are read from plain mappings (never this process's environment); the commands run
in process with their work (``WorkerProcess``) replaced, or stop at a bad option before any.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from keylane.cli import worker as worker_cli
from keylane.cli.options import PULSAR_CLIENT_LOG, broker_options
from keylane.errors import InvalidArgumentError
from keylane.runtime.settings import WorkerSettings, pulsar_connect_options
from keylane.service.logs import JsonFormatter, log_event
from keylane.service.publish import PublishConfig
from keylane.service.worker import WorkerProcess
from tests.unit.cli.support import error_line, run

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZXlsYW5lLXdvcmtlciJ9.c2lnbmF0dXJlLXZhbHVl"
BASE = {
    "KEYLANE_BROKER_URL": "pulsar+ssl://pulsar.example.org:6651",
    "KEYLANE_STORE_URL": "postgresql://keylane@127.0.0.1:5440/keylane",
    "KEYLANE_GATEWAY_URL": "http://127.0.0.1:8787",
}


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "pulsar.token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")  # settings check the file, not its PEM
    return path


# --------------------------------------------------------------------------- worker settings


def test_the_security_settings_come_from_their_variables(token_file: Path, ca_file: Path) -> None:
    # Given every Pulsar security variable
    env = {
        **BASE,
        "KEYLANE_PULSAR_TOKEN_FILE": str(token_file),
        "KEYLANE_PULSAR_TLS_TRUST_CERTS": str(ca_file),
        "KEYLANE_PULSAR_TLS_ALLOW_INSECURE": "yes",
        "KEYLANE_PULSAR_TLS_VALIDATE_HOSTNAME": "false",
    }
    # When the settings are read
    settings = WorkerSettings.from_env(env)
    # Then each one is typed, and they become the broker's options
    assert settings.pulsar_token_file == token_file
    assert settings.pulsar_tls_trust_certs == ca_file
    assert settings.pulsar_tls_allow_insecure is True
    assert settings.pulsar_tls_validate_hostname is False
    assert settings.pulsar_options() == {
        "auth_token_file": str(token_file),
        "tls_trust_certs_file": str(ca_file),
        "tls_allow_insecure_connection": True,
        "tls_validate_hostname": False,
    }


def test_a_token_variable_becomes_the_auth_token() -> None:
    settings = WorkerSettings.from_env({**BASE, "KEYLANE_PULSAR_TOKEN": f"  {TOKEN}\n"})
    assert settings.pulsar_token == TOKEN  # surrounding whitespace of the variable dropped
    assert settings.pulsar_options() == {"auth_token": TOKEN}


def test_without_security_settings_there_are_no_options() -> None:
    settings = WorkerSettings.from_env(BASE)
    assert (settings.pulsar_token, settings.pulsar_token_file) == (None, None)
    assert settings.pulsar_tls_validate_hostname is True
    assert settings.pulsar_options() == {}


def test_a_flag_wins_over_its_variable(token_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.token"
    other.write_text("other.token\n")
    env = {**BASE, "KEYLANE_PULSAR_TOKEN_FILE": str(token_file)}
    settings = WorkerSettings.from_env(env, pulsar_token_file=other)
    assert settings.pulsar_token_file == other
    settings = WorkerSettings.from_env(
        {**env, "KEYLANE_PULSAR_TLS_VALIDATE_HOSTNAME": "no"}, pulsar_tls_validate_hostname=True
    )
    assert settings.pulsar_tls_validate_hostname is True


@pytest.mark.parametrize(
    ("env", "flags", "names"),
    [
        ({"KEYLANE_PULSAR_TOKEN": "two words"}, {}, ("KEYLANE_PULSAR_TOKEN", "character 3 of 9")),
        ({}, {"pulsar_token": f"{TOKEN}\n"}, ("--pulsar-token", "visible ASCII")),
        ({}, {"pulsar_token": ""}, ("--pulsar-token", "non-empty")),
        ({"KEYLANE_PULSAR_TOKEN_FILE": "/no/t"}, {}, ("KEYLANE_PULSAR_TOKEN_FILE", "file")),
        ({}, {"pulsar_tls_trust_certs": Path("/no/ca")}, ("--pulsar-tls-trust-certs", "file")),
        ({"KEYLANE_PULSAR_TLS_ALLOW_INSECURE": "sure"}, {}, ("KEYLANE_PULSAR_TLS_ALLOW_INSECURE",)),
    ],
)  # fmt: skip
def test_a_bad_security_value_names_its_source_and_hides_the_token(
    env: dict[str, str], flags: dict[str, object], names: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        WorkerSettings.from_env({**BASE, **env}, **flags)
    message = str(caught.value)
    assert message.startswith(names[0])
    for part in names[1:]:
        assert part in message
    assert TOKEN not in message
    assert "two words" not in message


def test_a_token_and_a_token_file_are_refused_by_their_names(token_file: Path) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        WorkerSettings.from_env(
            {**BASE, "KEYLANE_PULSAR_TOKEN": TOKEN}, pulsar_token_file=token_file
        )
    message = str(caught.value)
    assert "--pulsar-token (KEYLANE_PULSAR_TOKEN)" in message
    assert "--pulsar-token-file (KEYLANE_PULSAR_TOKEN_FILE)" in message
    assert TOKEN not in message


def test_tls_settings_without_tls_are_refused(ca_file: Path) -> None:
    plain = {**BASE, "KEYLANE_BROKER_URL": "pulsar://127.0.0.1:6650"}
    with pytest.raises(InvalidArgumentError, match=r"^--pulsar-tls-trust-certs given without TLS"):
        WorkerSettings.from_env(plain, pulsar_tls_trust_certs=ca_file)
    with pytest.raises(InvalidArgumentError, match=r"^--no-pulsar-tls-validate-hostname given"):
        WorkerSettings.from_env({**plain, "KEYLANE_PULSAR_TLS_VALIDATE_HOSTNAME": "0"})
    # An https:// admin URL is TLS: the trust file is then for it
    settings = WorkerSettings.from_env(
        {**plain, "KEYLANE_PULSAR_ADMIN_URL": "https://pulsar.example.org:8443"},
        pulsar_tls_trust_certs=ca_file,
    )
    assert settings.pulsar_options() == {"tls_trust_certs_file": str(ca_file)}


def test_direct_construction_checks_the_security_fields_too(token_file: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^pulsar_token must be one line"):
        WorkerSettings(
            "pulsar://h:6650", "sqlite:///x.db", gateway_url="http://g", pulsar_token="a b"
        )
    with pytest.raises(InvalidArgumentError, match="are both given"):
        WorkerSettings(
            "pulsar://h:6650",
            "sqlite:///x.db",
            gateway_url="http://g",
            pulsar_token=TOKEN,
            pulsar_token_file=token_file,
        )


def test_the_token_is_masked_in_describe_and_absent_from_repr() -> None:
    settings = WorkerSettings.from_env({**BASE, "KEYLANE_PULSAR_TOKEN": TOKEN})
    assert settings.describe()["pulsar_token"] == "***"
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.describe())


def test_the_workers_started_line_never_holds_the_token() -> None:
    # Given the line the worker logs when it starts (its settings, described)
    settings = WorkerSettings.from_env({**BASE, "KEYLANE_PULSAR_TOKEN": TOKEN})
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter({"worker": settings.name}))
    logger = logging.getLogger("keylane.test.pulsar_security")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log_event(logger, "started", settings=settings.describe())
    finally:
        logger.removeHandler(handler)
    # Then the token's setting is there, masked
    line = json.loads(stream.getvalue())
    assert line["settings"]["pulsar_token"] == "***"
    assert line["settings"]["broker_url"] == BASE["KEYLANE_BROKER_URL"]
    assert TOKEN not in stream.getvalue()


def test_the_worker_process_passes_the_security_options_to_the_broker(token_file: Path) -> None:
    settings = WorkerSettings.from_env({**BASE, "KEYLANE_PULSAR_TOKEN_FILE": str(token_file)})
    process = WorkerProcess(settings, broker_options={"log_file": "/tmp/x.log"})
    assert process._broker_options == {"log_file": "/tmp/x.log", "auth_token_file": str(token_file)}


# --------------------------------------------------------------------------- other commands


def test_the_other_commands_read_the_same_variables(token_file: Path) -> None:
    env = {
        "KEYLANE_PULSAR_TOKEN_FILE": str(token_file),
        "KEYLANE_PULSAR_TLS_VALIDATE_HOSTNAME": "no",
    }
    options = pulsar_connect_options("pulsar+ssl://h:6651", None, environ=env)
    assert options == {"auth_token_file": str(token_file), "tls_validate_hostname": False}
    # A flag wins over its variable
    options = pulsar_connect_options(
        "pulsar+ssl://h:6651", None, environ=env, pulsar_tls_validate_hostname=True
    )
    assert options == {"auth_token_file": str(token_file)}
    with pytest.raises(InvalidArgumentError, match="unknown Pulsar security settings: token"):
        pulsar_connect_options("pulsar+ssl://h:6651", environ={}, token=TOKEN)


def test_broker_options_add_the_flags_for_pulsar_only(token_file: Path) -> None:
    flags: dict[str, Any] = {"pulsar_token": None, "pulsar_token_file": token_file}
    options = broker_options("pulsar+ssl://h:6651", "https://h:8443", **flags)
    assert options == {
        "log_file": str(PULSAR_CLIENT_LOG),
        "admin_url": "https://h:8443",
        "auth_token_file": str(token_file),
    }
    assert broker_options("memory://", None, **flags) == {}


def test_a_token_in_the_options_shows_as_stars_in_a_repr() -> None:
    # Given the options of a command given a token
    options = broker_options("pulsar+ssl://h:6651", None, pulsar_token=TOKEN)
    config = PublishConfig(broker_url="pulsar+ssl://h:6651", broker_options=options)
    # Then the token is the one given, but no repr of the options or of a config shows it
    assert options["auth_token"] == TOKEN
    assert "'auth_token': '***'" in repr(options)
    assert TOKEN not in repr(config)


@pytest.mark.parametrize("command", ["publish", "run", "compare"])
def test_a_bad_security_flag_stops_a_command_before_it_starts(
    command: str, token_file: Path
) -> None:
    result = run(
        command,
        "--broker",
        "pulsar://127.0.0.1:1",
        "--pulsar-token",
        TOKEN,
        "--pulsar-token-file",
        token_file,
    )
    line = error_line(result)
    assert "--pulsar-token (KEYLANE_PULSAR_TOKEN) and --pulsar-token-file" in line
    assert TOKEN not in result.output


def test_tls_flags_on_a_plain_url_stop_publish() -> None:
    result = run("publish", "--broker", "pulsar://127.0.0.1:1", "--pulsar-tls-allow-insecure")
    assert "--pulsar-tls-allow-insecure given without TLS" in error_line(result)


class _FakeProcess:
    seen: list[tuple[WorkerSettings, dict[str, object]]] = []

    def __init__(self, settings: WorkerSettings, *, broker_options: dict[str, object]) -> None:
        self.seen.append((settings, broker_options))

    async def run(self) -> int:
        return 0


def test_keylane_worker_takes_the_flags(
    monkeypatch: pytest.MonkeyPatch, token_file: Path, ca_file: Path
) -> None:
    # Given a worker command whose process and logging are stand-ins
    _FakeProcess.seen.clear()
    monkeypatch.setattr(worker_cli, "WorkerProcess", _FakeProcess)
    monkeypatch.setattr(worker_cli, "configure_logging", lambda **_: None)
    # When it runs with every security flag
    result = run(
        "worker",
        "--broker", "pulsar+ssl://pulsar.example.org:6651",
        "--store", "sqlite:///x.db",
        "--gateway", "http://127.0.0.1:8787",
        "--pulsar-token-file", token_file,
        "--pulsar-tls-trust-certs", ca_file,
        "--pulsar-tls-allow-insecure",
        "--no-pulsar-tls-validate-hostname",
    )  # fmt: skip
    # Then they are the settings the process gets
    assert result.exit_code == 0, result.output
    ((settings, _),) = _FakeProcess.seen
    assert settings.pulsar_options() == {
        "auth_token_file": str(token_file),
        "tls_trust_certs_file": str(ca_file),
        "tls_allow_insecure_connection": True,
        "tls_validate_hostname": False,
    }


def test_keylane_worker_with_token_and_file_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, token_file: Path
) -> None:
    monkeypatch.setattr(worker_cli, "WorkerProcess", _FakeProcess)
    monkeypatch.setattr(worker_cli, "configure_logging", lambda **_: None)
    result = run(
        "worker",
        "--broker", "pulsar://127.0.0.1:6650",
        "--store", "sqlite:///x.db",
        "--gateway", "http://127.0.0.1:8787",
        "--pulsar-token", TOKEN,
        "--pulsar-token-file", token_file,
    )  # fmt: skip
    assert "are both given" in error_line(result)
    assert TOKEN not in result.output
