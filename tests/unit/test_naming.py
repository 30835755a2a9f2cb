import pytest

from paas_svc.errors import InvalidInput
from paas_svc.naming import env_var_name, resource_name, validate_name


@pytest.mark.parametrize("slug", ["cache", "db", "feature-flags", "a", "a1", "x" * 40, "redis-7-main"])
def test_valid_slugs(slug):
    assert validate_name(slug) == slug


@pytest.mark.parametrize("slug", ["", "Cache", "my_cache", "1cache", "-cache", "cache-", "x" * 41, "café", "ca che", "cache.1", "cache\n"])
def test_invalid_slugs(slug):
    with pytest.raises(InvalidInput):
        validate_name(slug)


@pytest.mark.parametrize("slug,name", [("cache", "CACHE_URL"), ("feature-flags", "FEATURE_FLAGS_URL"), ("db2", "DB2_URL")])
def test_env_var_name(slug, name):
    assert env_var_name(slug) == name


def test_resource_name_prefix():
    assert resource_name("abc123") == "paas-svc-abc123"
