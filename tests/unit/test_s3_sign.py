"""The SigV4 signature paas sends to create a bucket equals botocore's for the same request."""

from datetime import datetime, timezone

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from paas_svc.kinds.s3 import signed_headers


def test_signature_matches_botocore(monkeypatch):
    now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
    ours = signed_headers("PUT", "127.0.0.1:9000", "/files", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "us-east-1", now)
    request = AWSRequest(method="PUT", url="http://127.0.0.1:9000/files",
                         headers={"x-amz-content-sha256": ours["x-amz-content-sha256"]})
    import botocore.auth

    class FixedTime(datetime):
        @classmethod
        def utcnow(cls):
            return now.replace(tzinfo=None)

        @classmethod
        def now(cls, tz=None):
            return now if tz else now.replace(tzinfo=None)

    monkeypatch.setattr(botocore.auth.datetime, "datetime", FixedTime)
    S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG"), "s3", "us-east-1").add_auth(request)
    assert request.headers["X-Amz-Date"] == ours["x-amz-date"]
    assert request.headers["Authorization"] == ours["Authorization"]
