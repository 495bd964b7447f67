#!/usr/bin/env python3
"""A backend application for stomphub's [proxy] (docs/proxy.md), standard library only.

    python3 examples/proxy-backend/app.py [--port 3000]

The broker POSTs one JSON object per call and reads one JSON object back:

    /stomp/connect    checks CONNECT credentials, names the user and roles
    /stomp/subscribe  refuses /topic/secret..., greets subscribers of /topic/welcome
    /stomp/publish    shouts on /topic/shout, refuses /topic/readonly...
    /stomp/app        the seeds' @MessageMapping("/v1/chat"), and /v1/echo

For tests of the failure paths, any of these paths may be prefixed with /slow
(answers after 5 s), /garbage (200 with a body that is not JSON), /status500 or
/redirect (302 to the same endpoint).
"""

import argparse
import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# The demo's one password. A real application checks its own user store, or a session
# cookie from the call's `http_headers` (docs/spring-guide.md shows one in Spring).
PASSWORD = "secret"


def refuse(message, code=None):
    answer = {"allow": False, "message": message}
    if code is not None:
        answer["code"] = code
    return answer


def body_text(call):
    """The frame's body as text: `body`, or `body_base64` when it was not UTF-8."""
    if "body" in call:
        return call["body"]
    if "body_base64" in call:
        return base64.b64decode(call["body_base64"]).decode("utf-8", "replace")
    return ""


def connect(call):
    login = call.get("login")
    if login == "banned":
        return refuse("user banned is not welcome", "banned")
    if not login:
        # No answer `user`: the session stays anonymous (or keeps a user its handshake
        # token proved, which arrives here as `user`).
        return {}
    if call.get("passcode") != PASSWORD:
        return refuse("wrong login or passcode", "bad-credentials")
    return {
        "user": login,
        "roles": ["admin"] if login == "admin" else ["member"],
        # Kept by the broker for the session and sent back in every later call.
        "data": {"greeting": "hello " + login},
    }


def subscribe(call):
    destination = call["destination"]
    # The destination is what the client sent, patterns included: a real application
    # would also refuse /topic/** here, which covers /topic/secret, or leave such
    # checks to an [[acl]] rule, which judges patterns for it.
    if destination.startswith("/topic/secret"):
        return refuse("no access to " + destination, "forbidden")
    if destination == "/topic/welcome":
        # Delivered to this subscription only, before anything published there.
        return {"body": "welcome " + (call.get("user") or "anonymous")}
    return {}


def publish(call):
    destination = call["destination"]
    if destination == "/topic/shout":
        answer = {"headers": {"shouted": "yes"}}
        if "body" in call:  # a binary body is passed on as it came
            answer["body"] = call["body"].upper()
        return answer
    if destination.startswith("/topic/readonly"):
        return refuse("read-only destination")
    return {}


def chat(call):
    """The seeds' @MessageMapping("/v1/chat") @SendTo("/topic/game_chat")."""
    text = body_text(call)
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        name, content = payload.get("name"), payload.get("content")
    else:  # plain text is the content itself
        name, content = None, text
    out = {"name": name, "content": content, "user": call.get("user"), "session": call["session"]}
    return {
        "replies": [
            {
                "destination": "/topic/game_chat",
                "body": json.dumps(out, ensure_ascii=False),
                "content_type": "application/json",
            },
            # @SendToUser("/queue/ack", broadcast = false): the client subscribes to
            # /user/queue/ack and hears that its own message was handled.
            {"destination": "/queue/ack", "body": "ok", "sender": True},
        ]
    }


def echo(call):
    reply = {"destination": "/topic/echo"}
    for key in ("body", "body_base64"):
        if key in call:
            reply[key] = call[key]
    headers = call.get("headers", {})
    if "content-type" in headers:
        reply["content_type"] = headers["content-type"]
    if "seq" in headers:
        # Lets a test check that replies keep the order of the SENDs.
        reply["headers"] = {"seq": headers["seq"]}
    return {"replies": [reply]}


APP_ROUTES = {"/v1/chat": chat, "/v1/echo": echo}


def app(call):
    path = call["path"]
    handler = APP_ROUTES.get(path)
    if handler is None:
        return refuse("no handler for " + path)
    return handler(call)


ENDPOINTS = {
    "/stomp/connect": connect,
    "/stomp/subscribe": subscribe,
    "/stomp/publish": publish,
    "/stomp/app": app,
}
HOOKS = ("slow", "garbage", "status500", "redirect")


class Handler(BaseHTTPRequestHandler):
    # Keep-alive: the broker reuses its connections instead of opening one per call.
    protocol_version = "HTTP/1.1"
    # The status line, the headers and the body go out in separate writes; with
    # Nagle's algorithm each answer on a kept-alive connection would wait for the
    # broker's delayed ACK (tens of milliseconds).
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass  # a line per call would drown the tests' output

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", "0"))
        if length < 0:
            raise ValueError(length)
        return self.rfile.read(length)

    # Set by --secret: calls must carry it in X-Stomphub-Secret ([proxy] headers),
    # so that only the broker, not anyone who can reach this port, is answered.
    secret = None

    def do_POST(self):
        try:
            raw = self.read_body()
        except ValueError:
            # Where this body ends is unknown, and so where the next request starts.
            self.close_connection = True
            return self.answer(400, b"unreadable request body\n", "text/plain")
        if self.secret is not None and self.headers.get("X-Stomphub-Secret") != self.secret:
            return self.answer(401, b"not the broker\n", "text/plain")

        # /slow/garbage/stomp/app: the hooks in front, then an endpoint.
        path, hooks = urlsplit(self.path).path, []
        while True:
            head, _, rest = path[1:].partition("/")
            if head not in HOOKS or not rest:
                break
            hooks.append(head)
            path = "/" + rest
        endpoint = ENDPOINTS.get(path)
        if endpoint is None:
            return self.answer(404, b"not found\n", "text/plain")

        try:
            call = json.loads(raw)
        except ValueError:
            call = None
        if not isinstance(call, dict):
            return self.answer(400, b"expected a JSON object\n", "text/plain")

        if "slow" in hooks:
            time.sleep(5)  # longer than the broker's default proxy.timeout_ms
        if "garbage" in hooks:
            return self.answer(200, b"this is not json", "application/json")
        if "status500" in hooks:
            return self.answer(500, b"internal error\n", "text/plain")
        if "redirect" in hooks:
            # A client that followed this would GET the endpoint and read its
            # empty answer; the broker must not.
            self.send_response(302)
            self.send_header("Location", path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            answer = endpoint(call)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            # A call without the fields (or field types) its kind always carries.
            return self.answer(400, f"bad call: {error!r}\n".encode(), "text/plain")
        self.answer(200, json.dumps(answer).encode(), "application/json")

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # The broker hangs up on a call it stopped waiting for (/slow): not worth a
        # traceback. Anything else is a bug in this file and is reported.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000, help="0 picks any free port")
    parser.add_argument("--secret", help="answer only calls whose X-Stomphub-Secret header is this")
    args = parser.parse_args()
    Handler.secret = args.secret
    server = Server(("127.0.0.1", args.port), Handler)
    # Tests start the app with --port 0 and read the port from this line.
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
