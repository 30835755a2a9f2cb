"""The variables each kind exports (pure): what real clients read, from the credentials."""

import pytest

from paas_svc.catalog import load_catalog
from paas_svc.errors import InvalidInput
from paas_svc.kinds.variables import check_url_scheme, default_bucket, service_url, service_variables
from paas_svc.usecases.lifecycle import spec_from_template

CREDS = {"user": "app", "password": "Pw0123456789abcdefghijklmnopqrst", "db": "db", "key": "K" * 32}


def variables(template_key, slug="svc", credentials=CREDS, **spec_extra):
    spec = {**spec_from_template(load_catalog()[template_key]), **spec_extra}
    return service_variables(slug, template_key, spec, credentials, "127.0.0.1", 5000)


def test_postgres_has_the_database_variables_and_keeps_its_url():
    assert variables("postgres-16", "main-db") == {
        "MAIN_DB_URL": f"postgres://app:{CREDS['password']}@127.0.0.1:5000/db",
        "MAIN_DB_HOST": "127.0.0.1", "MAIN_DB_PORT": "5000", "MAIN_DB_USER": "app",
        "MAIN_DB_PASSWORD": CREDS["password"], "MAIN_DB_DATABASE": "db",
    }


def test_postgres_url_scheme_is_a_per_service_choice():
    assert variables("postgres-16", url_scheme="postgresql")["SVC_URL"].startswith("postgresql://app:")
    assert check_url_scheme("postgres", "postgresql") == "postgresql"
    with pytest.raises(InvalidInput):
        check_url_scheme("postgres", "mysql")
    with pytest.raises(InvalidInput, match="PostgreSQL"):
        check_url_scheme("redis", "postgresql")


def test_s3_gets_what_sdks_read_and_a_bucket():
    found = variables("minio", "files")
    assert found["FILES_ENDPOINT"] == "http://127.0.0.1:5000"
    assert found["FILES_ACCESS_KEY_ID"] == "app" and found["FILES_SECRET_ACCESS_KEY"] == CREDS["password"]
    assert found["FILES_BUCKET"] == "files" and found["FILES_REGION"] == "us-east-1"
    assert found["FILES_URL"] == f"http://app:{CREDS['password']}@127.0.0.1:5000"  # kept as the product defines it
    assert default_bucket("s3") == "s3-files"  # S3 names need 3 characters


def test_meilisearch_url_has_no_credentials_and_the_key_is_apart():
    found = variables("meilisearch-1.10", "search")
    assert found == {"SEARCH_URL": "http://127.0.0.1:5000", "SEARCH_API_KEY": "K" * 32}


def test_smtp_redis_mongo():
    assert variables("mailpit", "mail") == {"MAIL_URL": "smtp://127.0.0.1:5000", "MAIL_HOST": "127.0.0.1", "MAIL_PORT": "5000"}
    redis = variables("redis-7", "cache", credentials={"password": CREDS["password"]})
    assert redis["CACHE_USER"] == "default" and redis["CACHE_PASSWORD"] == CREDS["password"]
    mongo = variables("mongodb-7", "docs")
    assert set(mongo) == {"DOCS_URL", "DOCS_HOST", "DOCS_PORT", "DOCS_USER", "DOCS_PASSWORD"}


def test_dsn_is_the_url_variable():
    spec = spec_from_template(load_catalog()["meilisearch-1.10"])
    assert service_url("meilisearch-1.10", spec, CREDS, "h", 1) == "http://h:1"
