"""moto's S3 server on :9000 with MinIO's health paths; arguments (`server /data ...`) are ignored.
It accepts any access key (MINIO_ROOT_USER/PASSWORD are not checked) and keeps data in memory."""

import signal
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

HEALTH = ("/minio/health/live", "/minio/health/ready")
s3 = DomainDispatcherApplication(create_backend_app)  # picks the service from the request's signature: s3


def app(environ, start_response):
    if environ.get("PATH_INFO") in HEALTH:
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    return s3(environ, start_response)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 ignores SIGTERM without a handler
print("minio stand-in (moto S3) on :9000", flush=True)
run_simple("0.0.0.0", 9000, app, threaded=True)
