"""A TLS-terminating, authenticating reverse proxy in front of the real test registry.

Apicurio Registry 2.4.2 cannot require HTTP basic auth or check bearer tokens without an OIDC
server (tests/README.md, "The Confluent-compatible registry"). Tests that need a registry which
demands credentials put this proxy in front of it: it checks the `Authorization` header (basic
user and password, or a static bearer token), answers 401 with Confluent's error body when it is
missing or wrong, and forwards everything else unchanged to the registry. Schemas, ids and
answers all come from the real registry; the proxy adds only the check.

    with AuthProxy(upstream, basic=("alice", "s3cret"), bearer="tok", tls=(cert, key)) as p:
        p.url  # https://127.0.0.1:PORT/apis/ccompat/v7 (http:// without tls)

Loopback only; it records every request's path and Authorization header (`p.seen`), so a test
can tell what a client sent.
"""

import base64
import hmac
import http.server
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request

# Hop-by-hop headers are the proxy's own business, never forwarded.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
        "proxy-authorization", "proxy-authenticate", "host", "content-length"}


class AuthProxy:
    """Forwards to `upstream` (the registry's base URL, e.g. http://127.0.0.1:P) after checking
    credentials; `basic` is (user, password) or None, `bearer` a token or None (each one that is
    set is accepted); `tls` is (certificate file, key file) or None for plain HTTP."""

    def __init__(self, upstream, basic=None, bearer=None, tls=None, path="/apis/ccompat/v7"):
        self.upstream = upstream.rstrip("/")
        self.basic = basic
        self.bearer = bearer
        self.tls = tls
        self.path = path
        self.seen = []  # (method, path, Authorization header or None)
        self._server = None
        self._thread = None

    def authorized(self, header):
        """Whether an Authorization header value carries accepted credentials."""
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and self.basic:
            want = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            return hmac.compare_digest(value.strip(), want)
        if scheme.lower() == "bearer" and self.bearer:
            return hmac.compare_digest(value.strip(), self.bearer)
        return False

    def __enter__(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: pytest shows failures, not traffic
                pass

            def _answer(self, status, body, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self):
                auth = self.headers.get("Authorization")
                proxy.seen.append((self.command, self.path, auth))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if not proxy.authorized(auth):
                    # Confluent's answer for missing or wrong credentials.
                    self._answer(401, b'{"error_code":401,"message":"Unauthorized"}',
                                 [("Content-Type", "application/vnd.schemaregistry.v1+json"),
                                  ("WWW-Authenticate", 'Basic realm="registry"')])
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in _HOP and k.lower() != "authorization"}
                req = urllib.request.Request(proxy.upstream + self.path, data=body,
                                             method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, out, rh = r.status, r.read(), r.headers.items()
                except urllib.error.HTTPError as e:
                    status, out, rh = e.code, e.read(), e.headers.items()
                self._answer(status, out, [(k, v) for k, v in rh if k.lower() not in _HOP])

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self):
        """The proxied ccompat API's URL."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
