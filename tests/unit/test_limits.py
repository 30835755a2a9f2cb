"""Parsing and rendering of resource limits (pure)."""

import pytest

from paas_svc.errors import InvalidInput
from paas_svc.limits import format_memory, limits_json, parse_cpus, parse_memory


@pytest.mark.parametrize("text,expected", [
    ("512m", 512 * 1024 ** 2), ("1g", 1024 ** 3), ("1.5G", int(1.5 * 1024 ** 3)), ("64MiB", 64 * 1024 ** 2),
    ("268435456", 268435456), ("none", None), ("0", None),
])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "5m", "-1g", "1t", ""])
def test_bad_memory_is_invalid_input(text):
    with pytest.raises(InvalidInput):
        parse_memory(text)


def test_parse_cpus():
    assert parse_cpus("1.5") == 1.5
    assert parse_cpus("none") is None
    for bad in ("x", "0.001", "-1"):
        with pytest.raises(InvalidInput):
            parse_cpus(bad)
    with pytest.raises(InvalidInput, match="2 CPUs"):
        parse_cpus("3", available=2)


def test_rendered_back():
    assert format_memory(512 * 1024 ** 2) == "512m"
    assert format_memory(int(1.5 * 1024 ** 3)) == "1.5g"
    assert limits_json({"limits": {"memory": 1024 ** 3, "cpus": 0.5}}) == {"memory": "1g", "memory_bytes": 1024 ** 3, "cpus": 0.5}
    assert limits_json({}) == {"memory": None, "memory_bytes": None, "cpus": None}
