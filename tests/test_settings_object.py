"""serve's one settings object: the table is its class, so each row's type is the value's."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from plugin.hosts.operator import settings
from plugin.hosts.operator.settings import SETTINGS, ServeSettings, resolve

# What each kind of row reads its text as.
TYPES: dict[str, object] = {
    settings.TEXT: str,
    settings.INTEGER: int,
    settings.NUMBER: float,
    settings.SWITCH: bool,
    settings.LIST: list[str],
    settings.PATH: Path,
}
# Rows whose value, once resolved, is never None although their table default is.
ALWAYS_SET = {"max_call_seconds"}


def test_every_row_is_a_field_of_the_type_its_kind_reads() -> None:
    hints = typing.get_type_hints(ServeSettings)
    assert [field.name for field in dataclasses.fields(ServeSettings)] == [
        setting.name for setting in SETTINGS
    ]
    for setting in SETTINGS:
        expected = TYPES[setting.kind]
        if setting.default is None and setting.name not in ALWAYS_SET:
            expected = expected | None  # type: ignore[operator]
        assert hints[setting.name] == expected, setting.name
        kind = typing.get_origin(TYPES[setting.kind]) or TYPES[setting.kind]
        assert setting.default is None or type(setting.default) is kind, setting.name


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("port", "8443", 8443),
        ("grace", "2.5", 2.5),
        ("unix", "/run/plugin.sock", Path("/run/plugin.sock")),
        ("insecure_plaintext", "yes", True),
        ("vault_prefix", "team/ ops/", ["team/", "ops/"]),
    ],
)
def test_a_variable_becomes_its_typed_field(name: str, text: str, value: object) -> None:
    resolved = resolve({}, {settings.BY_NAME[name].variable: text})
    assert getattr(resolved, name) == resolved[name] == value
    assert type(getattr(resolved, name)) is type(value)


def test_the_call_time_is_the_grace_unless_given() -> None:
    assert resolve({}, {}).max_call_seconds == settings.DEFAULT_GRACE_SECONDS
    assert resolve({"grace": "0"}, {}).max_call_seconds == settings.DEFAULT_MAX_CALL_SECONDS
    assert resolve({"grace": "20", "max_call_seconds": "15"}, {}).max_call_seconds == 15


def test_a_name_that_is_no_setting_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        resolve({}, {})["__post_init__"]
