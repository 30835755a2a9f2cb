"""The MongoDB readiness probe logs in for real: SCRAM-SHA-256 as the root user, then ping.

The stand-in image (paas-test/standin:1) checks the login against the
MONGO_INITDB_ROOT_USERNAME/PASSWORD the template sets, so a service only becomes
Ready when the probe proves the password, and the same probe with a wrong password
through the published port is "not ready".
"""

import json
from urllib.parse import urlsplit

from paas_svc.kinds.readiness import probe
from tests.support.images import STANDIN_IMAGE

MONGO = {"probe": "mongodb"}


def test_mongodb_is_ready_only_with_the_right_password(paas, engine):
    added = paas("svc", "add", "docs", "--template", "mongodb-7", "--image", STANDIN_IMAGE)
    assert added.exit_code == 0, added.output
    assert "Ready in" in added.stdout

    result = paas("svc", "dsn", "docs")
    assert result.exit_code == 0, result.output
    url = urlsplit(result.stdout.strip())
    assert url.scheme == "mongodb" and url.query == "authSource=admin"
    host, port, user, password = url.hostname, url.port, url.username, url.password

    # The stand-in really holds the root user the template passed in.
    row = json.loads(paas("svc", "list", "--json").stdout)[0]
    logs = engine.containers.get(row["container"]).logs().decode()
    assert f"SCRAM-SHA-256 login required for root user '{user}'" in logs

    assert probe(MONGO, host, port, {"user": user, "password": password + "x"}) == (False, "Authentication failed.")
    assert probe(MONGO, host, port, {"user": "nobody", "password": password}) == (False, "Authentication failed.")
    assert probe(MONGO, host, port, {"user": user, "password": password}) == (True, "authenticated ping answered ok")
