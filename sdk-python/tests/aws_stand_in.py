"""Local stand-ins for the AWS metadata endpoints (a uniquely named module, importable from
tests, and from the repository's docs test that runs docs/aws.md).

The real endpoints (169.254.169.254 for EC2, the ECS agent's URI) cannot be reached from
here, so a small real HTTP server on 127.0.0.1 plays both, speaking the documented protocol:
IMDSv2 answers metadata only with the token from ``PUT /latest/api/token``; the ECS task
metadata endpoint v4 answers ``/v4/container`` and ``/v4/container/task``. Point the SDK at it
through the variables that configure it on AWS (AWS_EC2_METADATA_SERVICE_ENDPOINT,
ECS_CONTAINER_METADATA_URI_V4=<url>/v4/container).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "imds-token-123"
EC2 = {
    "instance-id": "i-0abc1234def567890",
    "instance-type": "c6i.4xlarge",
    "ami-id": "ami-0123456789abcdef0",
    "placement/availability-zone": "eu-central-1a",
    "placement/region": "eu-central-1",
    "local-hostname": "ip-10-0-1-17.eu-central-1.compute.internal",
    "local-ipv4": "10.0.1.17",
}
ECS_CONTAINER = {"DockerId": "cafe01", "Name": "wafer-worker", "Image": "fab/wafer:2.1.0"}
ECS_TASK = {
    "Cluster": "fab1-cluster",
    "TaskARN": "arn:aws:ecs:eu-central-1:123456789012:task/fab1-cluster/abc",
    "Family": "wafer-worker",
    "Revision": "7",
    "AvailabilityZone": "eu-central-1b",
    "LaunchType": "FARGATE",
}


class StandIn(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, str | None]] = []

    def log_message(self, *_args) -> None:
        pass

    def _answer(self, status: int, body: str | dict) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.requests.append(
            ("PUT", self.path, self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"))
        )
        if self.path == "/latest/api/token" and self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        ):
            self._answer(200, TOKEN)
        else:
            self._answer(400, "bad token request")

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path, self.headers.get("X-aws-ec2-metadata-token")))
        if self.path.startswith("/latest/meta-data/"):
            if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                self._answer(401, "IMDSv2 token required")
            elif self.path.removeprefix("/latest/meta-data/") in EC2:
                self._answer(200, EC2[self.path.removeprefix("/latest/meta-data/")])
            else:
                self._answer(404, "not found")
        elif self.path == "/v4/container":
            self._answer(200, ECS_CONTAINER)
        elif self.path == "/v4/container/task":
            self._answer(200, ECS_TASK)
        else:
            self._answer(404, "not found")


@contextlib.contextmanager
def stand_in() -> Iterator[str]:
    StandIn.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
