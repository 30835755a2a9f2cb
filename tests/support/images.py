"""The stand-in images the engine tests run (built by `make images` from tests/images/)."""

REDIS_IMAGE = "paas-test/redis:7"
POSTGRES_IMAGE = "paas-test/postgres:16"
STANDIN_IMAGE = "paas-test/standin:1"
BASE_IMAGE = "paas-test/bookworm:base"
REGISTRY_IMAGE = "paas-test/registry:2"  # a local registry for the pull tests
MARIADB_IMAGE = "paas-test/mariadb:11"
RABBITMQ_IMAGE = "paas-test/rabbitmq:4"
MOSQUITTO_IMAGE = "paas-test/mosquitto:2"  # a service that is not in the catalog (user templates)
VALKEY_IMAGE = "paas-test/valkey:8"
MINIO_IMAGE = "paas-test/minio:standin"  # moto's real S3 API with MinIO's health paths
STANDIN_IMAGES = (REDIS_IMAGE, POSTGRES_IMAGE, STANDIN_IMAGE, BASE_IMAGE, REGISTRY_IMAGE,
                  MARIADB_IMAGE, RABBITMQ_IMAGE, MOSQUITTO_IMAGE, VALKEY_IMAGE, MINIO_IMAGE)
