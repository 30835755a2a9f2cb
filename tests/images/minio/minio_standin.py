"""moto's S3 server on :9000 with MinIO's health paths. It accepts any access key
(MINIO_ROOT_USER/PASSWORD are not checked) and keeps data in memory. Of the arguments
(`server /data --console-address :9001 ...`) only MinIO's `--certs-dir DIR` (or `-S DIR`) is
read: as with MinIO, DIR/public.crt and DIR/private.key make :9000 speak only HTTPS."""

import os
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


def certs_dir(argv):
    found = None
    for index, arg in enumerate(argv):
        if arg in ("--certs-dir", "-S") and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith("--certs-dir="):
            found = arg.split("=", 1)[1]
    return found


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 ignores SIGTERM without a handler
folder = certs_dir(sys.argv[1:])
tls = (os.path.join(folder, "public.crt"), os.path.join(folder, "private.key")) if folder else None
print(f"minio stand-in (moto S3) on :9000 ({'https, ' + folder if tls else 'http'})", flush=True)
run_simple("0.0.0.0", 9000, app, threaded=True, ssl_context=tls)
