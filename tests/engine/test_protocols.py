"""The MySQL and AMQP codecs against the real servers of the stand-in images (Debian's
MariaDB 10.11 and RabbitMQ 3.10): a right password logs in, a wrong one is refused with
the server's own reason."""

from __future__ import annotations

import secrets
import socket
import time

import pytest

from paas_svc.kinds.protocols import ProtocolError, amqp, mysql
from tests.support.images import MARIADB_IMAGE, RABBITMQ_IMAGE

LABEL = "paas-test.protocols"


@pytest.fixture
def run_container(docker_client):
    started = []

    def run(image: str, port: int, environment: dict[str, str], **options) -> int:
        container = docker_client.containers.run(
            image, detach=True, environment=environment, labels={LABEL: "1"},
            ports={f"{port}/tcp": ("127.0.0.1", None)}, **options)
        started.append(container)
        container.reload()
        return int(container.ports[f"{port}/tcp"][0]["HostPort"])

    yield run
    for container in started:
        container.remove(force=True, v=True)


def wait_for(attempt, timeout: float = 240.0):
    """Poll `attempt` until it stops raising connection errors (the server is starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except (OSError, EOFError, ProtocolError) as error:
            if isinstance(error, ProtocolError) and "Access denied" in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def mysql_login(port: int, user: str, password: str, database: str = "") -> mysql.Handshake:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        handshake = mysql.login(sock, user, password, database)
        mysql.quit(sock)
        return handshake


def amqp_login(port: int, user: str, password: str, vhost: str = "/") -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        amqp.open_connection(sock, user, password, vhost)
        amqp.close(sock)


def test_mysql_login_against_real_mariadb(run_container):
    password = secrets.token_hex(12)
    port = run_container(MARIADB_IMAGE, 3306, {"MARIADB_USER": "app", "MARIADB_PASSWORD": password,
                                               "MARIADB_DATABASE": "db", "MARIADB_ROOT_PASSWORD": secrets.token_hex(12)})
    handshake = wait_for(lambda: mysql_login(port, "app", password, "db"))
    assert "MariaDB" in handshake.server_version
    assert handshake.auth_plugin == mysql.NATIVE
    with pytest.raises(ProtocolError, match="Access denied"):
        mysql_login(port, "app", password + "x", "db")
    with pytest.raises(ProtocolError, match="Access denied"):
        mysql_login(port, "app", password, "mysql")  # the app user has rights on its own database only


def test_amqp_login_against_real_rabbitmq(run_container):
    password = secrets.token_hex(12)
    port = run_container(RABBITMQ_IMAGE, 5672, {"RABBITMQ_DEFAULT_USER": "app", "RABBITMQ_DEFAULT_PASS": password},
                         hostname="rabbitmq")
    wait_for(lambda: amqp_login(port, "app", password))
    with pytest.raises(ProtocolError, match="ACCESS_REFUSED"):
        amqp_login(port, "app", password + "x")
    with pytest.raises(ProtocolError, match="vhost"):
        amqp_login(port, "app", password, "no-such-vhost")
