"""KrakenD's own endpoint features in front of publishing: needs the real KrakenD CE binary.

`make test-krakend` runs these against build/krakend (TG_GATEWAY_BIN overrides) with the real
plugin, the test Kafka and moto, like tests/e2e (whose Gateway this reuses). kdhost has none of
these features, so a run on anything but KrakenD is an error, never a skip. Not part of
`make test`: CI has no KrakenD binary.
"""

import base64
import copy
import gzip
import http.server
import importlib.util
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import jwt  # PyJWT: tokens made by a library, not by hand
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("topicgate_e2e_conftest", ROOT / "tests" / "e2e" / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

# The HS256 key the validator trusts (a local JWK file) and the one a forger uses.
JWT_KID = "topicgate-test"
JWT_SECRET = b"topicgate test secret, 32 bytes!"
WRONG_SECRET = b"not the secret the gateway trusts"
CORS_ORIGIN = "https://app.example"
RATE_CAPACITY = 1  # requests the rate-limited endpoint takes before refusing (its bucket refills hourly)


def token(secret=JWT_SECRET, kid=JWT_KID, exp_in=300):
    """An HS256 JWT for the validator's local JWK (the trusted key unless told otherwise)."""
    now = int(time.time())
    return jwt.encode({"sub": "client-1", "iat": now, "exp": now + exp_in}, secret, algorithm="HS256", headers={"kid": kid})


def krakend_binary():
    explicit = os.environ.get("TG_GATEWAY_BIN")
    path = (Path(explicit) if os.path.isabs(explicit) else ROOT / explicit) if explicit else ROOT / "build" / "krakend"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(f"{path} is missing: these tests need the real KrakenD CE binary at build/krakend "
                           "(`make krakend` where KrakenD's Go modules can be downloaded)")
    out = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "USAGE_DISABLE": "1"})
    printed = out.stdout + out.stderr  # KrakenD prints its version on stderr
    if "KrakenD Version" not in printed or "kdhost" in printed:
        raise RuntimeError(f"{path} is not KrakenD CE (`version` printed {printed.strip()!r}); "
                           "kdhost has no JWT, rate limit or CORS")
    return path


class SpanSink:
    """A loopback OTLP/HTTP receiver: keeps the (decompressed) bodies KrakenD exports to /v1/traces."""

    def __init__(self):
        bodies = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def exported(self, span_id_hex):
        """Whether a span with this id was exported (OTLP carries span ids as raw bytes)."""
        raw = bytes.fromhex(span_id_hex)
        return any(raw in b for b in list(self.bodies))


READ_PREFIX = "/internal/read/"  # the read route of the internal reader gateway
READ_TIMEOUT = "3s"  # the JWT read endpoint's timeout: KrakenD ends each SSE answer there


class InternalReader(e2e.Gateway):
    """A second gateway on its own loopback port with only a server-mounted read route: the
    internal service a KrakenD endpoint with JWT validation proxies to. KrakenD's http-server
    plugins run before its router (no endpoint features) and its http-client plugins buffer the
    whole answer, so a JWT-guarded event stream is KrakenD's no-op proxy to a reader it fronts."""

    def __init__(self, tmp, topic):
        super().__init__(tmp)
        self.bin = krakend_binary()
        self.read_topic = topic

    def write_schemas(self):
        self.schema_dir.mkdir()
        (self.schema_dir / f"{self.read_topic}.proto").write_text(e2e.CLASSIC_PROTO)

    def create_glue_schema(self):  # no Glue here
        pass

    def delete_glue_schema(self):
        pass

    def write_config(self):
        base = json.loads((ROOT / "krakend" / "krakend.json").read_text())
        srv = base["extra_config"]["plugin/http-server"]["topicgate"]
        srv["core"]["kafka"]["bootstrap_servers"] = self.bootstrap
        srv["core"]["registry"] = {"kind": "file", "directory": str(self.schema_dir)}
        srv["routes"] = [{"path_prefix": READ_PREFIX, "topics": [self.read_topic],
                          "read": {"topics": [self.read_topic], "keep_alive_ms": 500}}]
        base["extra_config"] = {"plugin/http-server": base["extra_config"]["plugin/http-server"]}
        base.update(endpoints=[], port=self.port, listen_ip="127.0.0.1",
                    name=f"topicgate internal reader {self.run_id}")
        base["plugin"]["folder"] = str(ROOT / "build") + "/"
        self.config_path.write_text(json.dumps(base, indent=2))


class FeatureGateway(e2e.Gateway):
    """KrakenD with plugin/http-client endpoints, one per feature, each with its own topic, and
    its OpenTelemetry exporting traces to a SpanSink; and a JWT-guarded read endpoint proxying to
    an InternalReader."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.bin = krakend_binary()
        self.read_topic = f"KRead{self.run_id}"  # read through the JWT endpoint
        (tmp / "reader").mkdir()
        self.reader = InternalReader(tmp / "reader", self.read_topic)
        self.jwt_topic = f"KJwt{self.run_id}"
        self.rate_topic = f"KRate{self.run_id}"
        self.cors_topic = f"KCors{self.run_id}"
        self.trace_topic = f"KTrace{self.run_id}"
        self.stream_topic = f"KStream{self.run_id}"  # a stream through the http-server mounting
        self.jwk_path = tmp / "jwk.json"
        self.spans = SpanSink()

    def write_schemas(self):
        self.schema_dir.mkdir()
        for t in (self.jwt_topic, self.rate_topic, self.cors_topic, self.trace_topic, self.stream_topic):
            (self.schema_dir / f"{t}.proto").write_text(e2e.CLASSIC_PROTO)

    def create_glue_schema(self):  # no Glue here
        pass

    def delete_glue_schema(self):
        pass

    def start(self):
        self.reader.start()  # first: the read endpoint's backend is its port
        super().start()

    def stop(self):
        try:
            super().stop()
        finally:
            self.reader.stop()

    def log(self):
        return super().log() + "\n--- internal reader ---\n" + self.reader.log()

    def write_config(self):
        k = base64.urlsafe_b64encode(JWT_SECRET).rstrip(b"=").decode()
        self.jwk_path.write_text(json.dumps({"keys": [{"kty": "oct", "kid": JWT_KID, "alg": "HS256", "k": k}]}))
        base = json.loads((ROOT / "krakend" / "krakend.json").read_text())
        example = base["endpoints"][0]
        block = example["backend"][0]["extra_config"]["plugin/http-client"]["topicgate"]
        block["core"]["kafka"]["bootstrap_servers"] = self.bootstrap
        block["core"]["registry"] = {"kind": "file", "directory": str(self.schema_dir)}

        def endpoint(path, topic, extra):
            e = copy.deepcopy(example)
            e["endpoint"] = path
            e["backend"][0]["extra_config"]["plugin/http-client"]["topicgate"]["topics"] = [topic]
            e["extra_config"] = extra
            return e

        cfg = {k: v for k, v in base.items() if k not in ("endpoints", "extra_config")}
        cfg.update(name=f"topicgate krakend features {self.run_id}", port=self.port, listen_ip="127.0.0.1")
        cfg["plugin"]["folder"] = str(ROOT / "build") + "/"
        cfg["extra_config"] = {"security/cors": {
            "allow_origins": [CORS_ORIGIN],
            "allow_methods": ["POST"],
            "allow_headers": ["Content-Type", "Message-Key", "Message-Headers"],
            "max_age": "12h",
        }, "telemetry/opentelemetry": {
            "service_name": "topicgate-krakend-tests",
            "trace_sample_rate": 1,
            "exporters": {"otlp": [{"name": "sink", "host": "127.0.0.1", "port": self.spans.port,
                                    "use_http": True, "disable_metrics": True}]},
        }}
        # Streams behind KrakenD's telemetry/opentelemetry, which wraps the server's writer.
        cfg["extra_config"]["plugin/http-server"] = {"name": ["topicgate"], "topicgate": {
            "core": block["core"],
            "routes": [{"path_prefix": "/k/stream/", "topics": [self.stream_topic],
                        "batch": {"stream": {"idle_timeout_ms": 1000}}}],
        }}
        cfg["endpoints"] = [
            endpoint("/k/jwt/{topic}", self.jwt_topic, {"auth/validator": {
                "alg": "HS256", "jwk_local_path": str(self.jwk_path), "disable_jwk_security": True,
            }}),
            endpoint("/k/rate/{topic}", self.rate_topic, {"qos/ratelimit/router": {
                "max_rate": RATE_CAPACITY, "capacity": RATE_CAPACITY, "every": "1h",
            }}),
            endpoint("/k/cors/{topic}", self.cors_topic, {}),
            endpoint("/k/trace/{topic}", self.trace_topic, {}),
            # The read route behind JWT: KrakenD's no-op proxy passes the event stream through
            # (it copies the body until the endpoint's timeout, without flushing per event).
            {"endpoint": "/k/read/{topic}", "method": "GET", "output_encoding": "no-op",
             "timeout": READ_TIMEOUT, "input_headers": ["Accept", "Last-Event-ID"],
             "input_query_strings": ["start", "limit", "partition", "offset", "position", "wait"],
             "extra_config": {"auth/validator": {
                 "alg": "HS256", "jwk_local_path": str(self.jwk_path), "disable_jwk_security": True}},
             "backend": [{"host": [f"http://127.0.0.1:{self.reader.port}"],
                          "url_pattern": READ_PREFIX + "{topic}", "method": "GET", "encoding": "no-op"}]},
        ]
        self.config_path.write_text(json.dumps(cfg, indent=2))


@pytest.fixture(scope="session")
def kd():
    yield from e2e.running(FeatureGateway, "topicgate-krakend-")


# A failed test shows the gateway's log: tests/e2e/conftest.py's hook (already a hookwrapper),
# over the state e2e.running keeps.
pytest_runtest_makereport = e2e.pytest_runtest_makereport
