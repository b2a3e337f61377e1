"""WorkerSettings: variables, flags over them, defaults, and one clear error per bad value.

The settings are read from a plain mapping (never this process's environment), so each test
states exactly the environment it means.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keylane.errors import InvalidArgumentError
from keylane.runtime import settings as settings_module
from keylane.runtime.settings import WORKER_SETTINGS, WorkerSettings, default_worker_name

BASE = {
    "KEYLANE_BROKER_URL": "pulsar://127.0.0.1:6650",
    "KEYLANE_STORE_URL": "postgresql://keylane@127.0.0.1:5440/keylane",
    "KEYLANE_GATEWAY_URL": "http://127.0.0.1:8787/",
}


def test_every_setting_comes_from_its_variable() -> None:
    # Given one value per variable
    env = {
        **BASE,
        "KEYLANE_PULSAR_ADMIN_URL": "http://127.0.0.1:8080",
        "KEYLANE_JOURNEYS": "/etc/keylane/journeys.toml",
        "KEYLANE_SMS_WEBHOOK": "https://sms.example.com/hook",
        "KEYLANE_EMAIL_WEBHOOK": "https://mail.example.com/hook",
        "KEYLANE_WORKER_NAME": "pod-7",
        "KEYLANE_TOPIC": "persistent://acme/prod/events",
        "KEYLANE_SUBSCRIPTION": "decisions",
        "KEYLANE_CONSUMERS": "3",
        "KEYLANE_MAX_IN_FLIGHT": "64",
        "KEYLANE_SPEED": "600",
        "KEYLANE_CLOCK_START": "2026-11-27T05:00:00Z",
        "KEYLANE_HISTORY": "/tmp/w.jsonl",
        "KEYLANE_HEALTH_PORT": "9100",
        "KEYLANE_GRACE": "2.5",
        "KEYLANE_HANDLER_TIMEOUT": "4",
        "KEYLANE_STATS_INTERVAL": "30",
        "KEYLANE_JSON_LOGS": "no",
        "KEYLANE_LOG_LEVEL": "WARNING",
    }
    # When the settings are read
    settings = WorkerSettings.from_env(env)
    # Then each one has the variable's value, typed
    assert settings.broker_url == "pulsar://127.0.0.1:6650"
    assert settings.gateway_url == "http://127.0.0.1:8787"  # the trailing slash dropped
    assert settings.journeys_path == Path("/etc/keylane/journeys.toml")
    assert settings.sms_webhook == "https://sms.example.com/hook"
    assert settings.name == "pod-7"
    assert settings.topic == "persistent://acme/prod/events"
    assert settings.subscription == "decisions"
    assert (settings.consumers, settings.max_in_flight, settings.health_port) == (3, 64, 9100)
    assert settings.speed == 600.0
    assert settings.clock_start == datetime(2026, 11, 27, 5, tzinfo=UTC)
    assert settings.history_path == Path("/tmp/w.jsonl")
    assert (settings.grace, settings.stats_interval) == (2.5, 30.0)
    assert settings.handler_timeout == 4.0
    assert settings.json_logs is False
    assert settings.log_level == "warning"


def test_flags_win_over_variables_and_none_means_not_given() -> None:
    env = {**BASE, "KEYLANE_CONSUMERS": "3", "KEYLANE_WORKER_NAME": "from-env"}
    settings = WorkerSettings.from_env(env, consumers=5, name=None, grace=0.0)
    assert settings.consumers == 5
    assert settings.name == "from-env"
    assert settings.grace == 0.0


def test_defaults_and_the_default_name() -> None:
    settings = WorkerSettings.from_env(BASE)
    assert settings.name == default_worker_name()
    assert settings.name.endswith(f"-{os.getpid()}")
    assert (settings.consumers, settings.max_in_flight, settings.health_port) == (1, 256, 0)
    assert (settings.speed, settings.clock_start, settings.history_path) == (None, None, None)
    assert settings.json_logs is True
    assert settings.grace == 10.0


def test_an_empty_variable_counts_as_unset() -> None:
    settings = WorkerSettings.from_env({**BASE, "KEYLANE_CONSUMERS": "  ", "KEYLANE_SPEED": ""})
    assert settings.consumers == 1
    assert settings.speed is None


@pytest.mark.parametrize(
    ("env", "flags", "names"),
    [
        ({"KEYLANE_BROKER_URL": "memory://"}, {}, ("KEYLANE_BROKER_URL", "memory://", "real")),
        ({}, {"broker_url": "memory://"}, ("--broker", "memory://", "shared")),
        ({"KEYLANE_BROKER_URL": "kafka://h:9092"}, {}, ("KEYLANE_BROKER_URL", "pulsar://")),
        ({"KEYLANE_STORE_URL": "memory://"}, {}, ("KEYLANE_STORE_URL", "outlive")),
        ({}, {"store_url": "redis://h"}, ("--store", "postgresql://")),
        ({"KEYLANE_CONSUMERS": "two"}, {}, ("KEYLANE_CONSUMERS", "integer", "'two'")),
        ({"KEYLANE_CONSUMERS": "0"}, {}, ("KEYLANE_CONSUMERS", ">= 1")),
        ({}, {"consumers": 100}, ("--consumers", "<= 64")),
        ({"KEYLANE_HEALTH_PORT": "70000"}, {}, ("KEYLANE_HEALTH_PORT", "65535")),
        ({"KEYLANE_SPEED": "-1"}, {}, ("KEYLANE_SPEED", "> 0")),
        ({"KEYLANE_GRACE": "soon"}, {}, ("KEYLANE_GRACE", "number")),
        ({"KEYLANE_HANDLER_TIMEOUT": "0.05"}, {}, ("KEYLANE_HANDLER_TIMEOUT", "at least 0.1")),
        ({"KEYLANE_JSON_LOGS": "maybe"}, {}, ("KEYLANE_JSON_LOGS", "true or false")),
        ({"KEYLANE_LOG_LEVEL": "loud"}, {}, ("KEYLANE_LOG_LEVEL", "debug, info")),
        ({"KEYLANE_CLOCK_START": "2026-11-27T05:00"}, {}, ("KEYLANE_CLOCK_START", "timezone")),
        ({"KEYLANE_CLOCK_START": "Friday"}, {}, ("KEYLANE_CLOCK_START", "ISO-8601")),
        ({"KEYLANE_WORKER_NAME": "pod 7"}, {}, ("KEYLANE_WORKER_NAME", "letters")),
        ({"KEYLANE_GATEWAY_URL": "ftp://gw"}, {}, ("KEYLANE_GATEWAY_URL", "http://")),
        ({}, {"sms_webhook": "localhost:8787"}, ("--sms-webhook", "http://")),
    ],
)
def test_a_bad_value_names_its_source(
    env: dict[str, str], flags: dict[str, object], names: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        WorkerSettings.from_env({**BASE, **env}, **flags)
    message = str(caught.value)
    assert message.startswith(names[0])
    for part in names[1:]:
        assert part in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("missing", "says"),
    [
        ("KEYLANE_BROKER_URL", "no broker: pass --broker pulsar://host:6650 or set KEYLANE_BROKER"),
        ("KEYLANE_STORE_URL", "no store: pass --store"),
        ("KEYLANE_GATEWAY_URL", "nowhere to send sms: pass --gateway URL"),
    ],
)
def test_a_missing_setting_says_how_to_give_it(missing: str, says: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(InvalidArgumentError, match=says):
        WorkerSettings.from_env(env)


def test_one_webhook_per_channel_needs_no_gateway() -> None:
    env = {k: v for k, v in BASE.items() if k != "KEYLANE_GATEWAY_URL"}
    settings = WorkerSettings.from_env(
        env, sms_webhook="http://sms:1/hook", email_webhook="http://mail:1/hook"
    )
    assert settings.gateway_url is None
    with pytest.raises(InvalidArgumentError, match="nowhere to send email"):
        WorkerSettings.from_env(env, sms_webhook="http://sms:1/hook")


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown worker settings: brokr"):
        WorkerSettings.from_env(BASE, brokr="pulsar://h:6650")


def test_direct_construction_checks_each_field_by_name() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^consumers must be >= 1"):
        WorkerSettings("pulsar://h:6650", "sqlite:///x.db", gateway_url="http://g", consumers=0)


def test_describe_lists_every_setting_as_text() -> None:
    settings = WorkerSettings.from_env({**BASE, "KEYLANE_HISTORY": "/tmp/w.jsonl"})
    described = settings.describe()
    assert list(described) == [spec.attr for spec in WORKER_SETTINGS]
    assert described["history_path"] == "/tmp/w.jsonl"
    assert described["store_url"] == BASE["KEYLANE_STORE_URL"]


def test_describe_shows_a_secret_setting_as_stars(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a setting marked secret (as a future API token would be)
    marked = tuple(
        dataclasses.replace(spec, secret=True) if spec.attr == "store_url" else spec
        for spec in WORKER_SETTINGS
    )
    monkeypatch.setattr(settings_module, "WORKER_SETTINGS", marked)
    # When the settings are described, its value is not shown; unset ones stay None
    described = WorkerSettings.from_env(BASE).describe()
    assert described["store_url"] == "***"
    assert described["broker_url"] == BASE["KEYLANE_BROKER_URL"]


def test_every_setting_has_a_distinct_variable_and_flag() -> None:
    envs = [spec.env for spec in WORKER_SETTINGS]
    flags = [spec.flag for spec in WORKER_SETTINGS]
    assert len(set(envs)) == len(envs)
    assert len(set(flags)) == len(flags)
    assert all(env.startswith("KEYLANE_") for env in envs)
    assert all(flag.startswith("--") for flag in flags)
