"""The amqp kind (rabbitmq-4) on the real engine, with Debian's RabbitMQ as the stand-in and
pika as the client: a durable queue and a persistent message survive backup, destroy,
restore into a new service with new credentials; the container hostname is fixed."""

from __future__ import annotations

import os
from pathlib import Path

import pika

from tests.support.engine import profile_id
from tests.support.images import RABBITMQ_IMAGE
from tests.support.kinds import add, backup, destroy, dsn, restore


def connection(url) -> pika.BlockingConnection:
    assert url.scheme == "amqp" and url.username == "app" and url.path == "/%2F"  # the vhost "/"
    return pika.BlockingConnection(pika.URLParameters(url.geturl()))


def publish(url, body: bytes) -> None:
    with connection(url) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.queue_declare("jobs", durable=True)
        channel.basic_publish("", "jobs", body, pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent), mandatory=True)


def drain(url) -> list[bytes]:
    bodies = []
    with connection(url) as conn:
        channel = conn.channel()
        channel.queue_declare("jobs", durable=True, passive=True)
        while True:
            method, _, body = channel.basic_get("jobs", auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)


def test_rabbitmq_round_trip(engine, tmp_path):
    add("bus", "rabbitmq-4", RABBITMQ_IMAGE)
    container = engine.containers.get(f"paas-svc-{_service_id(engine, 'bus')}")
    assert container.attrs["Config"]["Hostname"] == "rabbitmq"
    first = dsn("bus")
    publish(first, b"job 1")
    archive = tmp_path / "bus.tar"
    backup("bus", archive)
    assert first.password.encode() not in archive.read_bytes()

    destroy("bus")
    add("bus", "rabbitmq-4", RABBITMQ_IMAGE)
    second = dsn("bus")
    assert second.password != first.password
    restore("bus", archive)
    assert drain(second) == [b"job 1"]  # and the new password still logs in


def _service_id(engine, slug: str) -> str:
    mine = f"paas.profile={profile_id(Path(os.environ['PAAS_HOME']))}"  # other profiles may use the slug too
    [container] = engine.containers.list(all=True, filters={"label": [f"paas.slug={slug}", mine]})
    return container.labels["paas.service-id"]
