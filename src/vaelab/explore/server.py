"""The explorer's HTTP server: loopback only, same-origin only, JSON in and out.

The page and its script are files of this package (``static/``), so nothing is fetched from the
internet. Requests are refused with 403 unless their ``Host`` (and, when sent, ``Origin``) name
this server on the loopback address: another site open in the same browser cannot read from it,
and a DNS-rebinding name pointing at 127.0.0.1 is turned away too. Malformed requests get 400 with
a one-line message; no request can stop the server.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from ..errors import VaelabError
from .session import Explorer, RequestError

LOOPBACK = "127.0.0.1"
MAX_BODY = 1 << 20  # bytes: a full decode request (256 codes x 64 dims) is ~200 kB
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/explore.js": ("explore.js", "text/javascript; charset=utf-8"),
    "/explore.css": ("explore.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Only our own files run, and the page cannot be framed by another site.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
}
logger = logging.getLogger(__name__)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class ExplorerServer(ThreadingHTTPServer):
    """A threaded HTTP server for one :class:`Explorer`, bound to 127.0.0.1.

    Parameters
    ----------
    explorer : Explorer
    port : int
        0 picks a free port; :attr:`url` gives the one chosen.
    """

    daemon_threads = True  # open keep-alive connections must not hold up Ctrl-C
    allow_reuse_address = True

    def __init__(self, explorer: Explorer, port: int = 0):
        super().__init__((LOOPBACK, port), _Handler)
        self.explorer = explorer
        self.port = self.server_address[1]
        self.allowed_hosts = {f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"}
        self.allowed_origins = {f"http://{host}" for host in self.allowed_hosts}
        package = resources.files(__package__) / "static"
        self.assets = {path: ((package / name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def handle_error(self, request, client_address) -> None:
        # socketserver prints a traceback to stderr; a closed browser tab is not worth one.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: ExplorerServer
    protocol_version = "HTTP/1.1"  # keep-alive: the page's decodes reuse one connection
    # Headers and body go out in two writes; with Nagle's algorithm the body then waits for the
    # client's delayed ACK of the headers (~40 ms on Linux), most of a decode's time budget.
    disable_nagle_algorithm = True
    server_version = "vaelab-explore"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        logger.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in _SECURITY_HEADERS.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, document: dict) -> None:
        self._send(status, json.dumps(document, allow_nan=False).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _same_origin(self) -> bool:
        """True for requests to this server by its own name from its own page (or a non-browser client)."""
        host = self.headers.get("Host")
        origin = self.headers.get("Origin")
        if host not in self.server.allowed_hosts:
            self._error(403, f"refused: Host {host!r} is not this explorer's address")
            return False
        if origin is not None and origin not in self.server.allowed_origins:
            self._error(403, f"refused: requests from {origin!r} are not allowed; open {self.server.url}")
            return False
        if self.headers.get("Sec-Fetch-Site") == "cross-site":
            self._error(403, "refused: cross-site request")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._same_origin():
            return
        path = self.path.split("?", 1)[0]
        if path == "/api/state":
            self._json(200, self.server.explorer.state())
        elif path in self.server.assets:
            self._send(200, *self.server.assets[path])
        else:
            self._error(404, f"no such page {path!r}")

    do_HEAD = do_GET

    def _body(self) -> dict | None:
        """The request's JSON object, or None after answering 400."""
        kind = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            self.close_connection = True
            self._error(400, f"the body must be JSON sent as application/json, not {kind or 'nothing'!r}")
            return None
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the body is left unread: the connection cannot be reused
            self._error(400, f"the body must have a Content-Length of at most {MAX_BODY} bytes")
            return None
        raw = self.rfile.read(length)
        try:
            document = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            self._error(400, f"the body is not valid JSON: {str(exc)[:200]}")
            return None
        if not isinstance(document, dict):
            self._error(400, f"the body must be a JSON object, got {type(document).__name__}")
            return None
        return document

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if not self._same_origin():
            self.close_connection = True
            return
        explorer = self.server.explorer
        routes = {
            "/api/decode": explorer.decode,
            "/api/interpolate": explorer.interpolation,
            "/api/samples": explorer.samples,
        }
        handler = routes.get(self.path)
        if handler is None:
            self.close_connection = True
            self._error(404, f"no such endpoint {self.path!r}; POST to one of {sorted(routes)}")
            return
        request = self._body()
        if request is None:
            return
        try:
            self._json(200, handler(request))
        except RequestError as exc:
            self._error(400, str(exc))
        except VaelabError as exc:  # the model's own checks of what it was given
            self._error(400, f"{type(exc).__name__}: {exc}")
        except Exception:  # a bug must not end the server; the page shows the message
            logger.exception("explorer request %s failed", self.path)
            self._error(500, "internal error while answering this request; see the server's log")
