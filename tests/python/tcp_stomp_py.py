#!/usr/bin/env python3
"""stomp.py, the STOMP client from PyPI, against the stomphub binary over plain
TCP and over TLS ([tcp]): connect with heart-beats, a subscription confirmed by
its receipt, 1,000 messages in order, transactions, an ERROR then the close for
a malformed frame and for one over the size limit (while others are served),
and TLS with the broker's certificate.

Run by scripts/test.sh from a virtual environment with stomp.py installed;
STOMPHUB_BIN names the binary (default target/debug/stomphub). Prints one line
per test and "python: N passed, M failed"; exits non-zero on any failure.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import stomp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("STOMPHUB_BIN") or os.path.join(ROOT, "target", "debug", "stomphub")
WAIT = 10.0
SCRATCH = tempfile.mkdtemp(prefix="stomphub-python-")


class Broker:
    """The binary with a config of the test's own, on ephemeral loopback ports."""

    def __init__(self, name, config):
        path = os.path.join(SCRATCH, f"{name}.toml")
        with open(path, "w") as file:
            file.write('[server]\nbind = "127.0.0.1:0"\n[demo]\nprice_feed_ms = 0\n' + config)
        self.process = subprocess.Popen(
            [BINARY, "--config", path, "serve"],
            cwd=ROOT,
            env={**os.environ, "RUST_LOG": "info"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log = []
        found = threading.Event()
        self.port = None

        def read():
            # Reads the whole log, so a full pipe never stalls the broker.
            for line in self.process.stderr:
                self.log.append(line)
                listening = re.search(r"listening on stomp(?:\+ssl)?://[\d.]+:(\d+)", line)
                if listening:
                    self.port = int(listening.group(1))
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(WAIT):
            self.process.kill()
            raise RuntimeError("stomphub did not log its TCP listener:\n" + "".join(self.log))

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(WAIT)


class Recorder(stomp.ConnectionListener):
    """Everything one connection saw, for the test thread to wait on."""

    def __init__(self):
        self.changed = threading.Condition()
        self.messages = []
        self.errors = []
        self.receipts = []
        self.heartbeats = 0
        self.disconnected = False

    def _record(self, update):
        with self.changed:
            update()
            self.changed.notify_all()

    def on_message(self, frame):
        self._record(lambda: self.messages.append(frame))

    def on_error(self, frame):
        self._record(lambda: self.errors.append(frame))

    def on_receipt(self, frame):
        self._record(lambda: self.receipts.append(frame.headers.get("receipt-id")))

    def on_heartbeat(self):
        def beat():
            self.heartbeats += 1

        self._record(beat)

    def on_disconnected(self):
        def gone():
            self.disconnected = True

        self._record(gone)

    def wait_for(self, what, condition, timeout=WAIT):
        with self.changed:
            if not self.changed.wait_for(condition, timeout):
                raise AssertionError(f"no {what} within {timeout} s")


def connect(port, heartbeats=(0, 0), tls_ca=None):
    host = "localhost" if tls_ca else "127.0.0.1"
    conn = stomp.Connection([(host, port)], heartbeats=heartbeats)
    if tls_ca:
        conn.set_ssl(for_hosts=[(host, port)], ca_certs=tls_ca)
    recorder = Recorder()
    conn.set_listener("recorder", recorder)
    conn.connect(wait=True)
    return conn, recorder


def subscribe(conn, recorder, destination, sub_id):
    receipt = f"sub-{sub_id}"
    conn.subscribe(destination=destination, id=sub_id, ack="auto", headers={"receipt": receipt})
    recorder.wait_for(f"receipt {receipt}", lambda: receipt in recorder.receipts)


def bodies(recorder):
    return [message.body for message in recorder.messages]


def test_a_thousand_messages_in_order(broker):
    subscriber, seen = connect(broker.port)
    subscribe(subscriber, seen, "/topic/py", "1")
    publisher, _ = connect(broker.port)
    for n in range(1000):
        publisher.send(destination="/topic/py", body=f"{n} héllo")
    seen.wait_for("1,000 messages", lambda: len(seen.messages) >= 1000)
    assert bodies(seen) == [f"{n} héllo" for n in range(1000)], bodies(seen)[:5]
    first = seen.messages[0].headers
    assert first["destination"] == "/topic/py" and first["subscription"] == "1", first
    subscriber.disconnect()
    publisher.disconnect()


def test_heart_beats_both_ways(broker):
    conn, seen = connect(broker.port, heartbeats=(500, 500))
    time.sleep(3)
    assert seen.heartbeats >= 3, f"only {seen.heartbeats} heart-beats from the broker"
    # stomp.py beat too, or the broker would have cut it after 1.5 s.
    assert conn.is_connected() and not seen.disconnected
    subscribe(conn, seen, "/topic/py-beats", "b")
    conn.disconnect()


def test_transactions(broker):
    subscriber, seen = connect(broker.port)
    subscribe(subscriber, seen, "/topic/py-tx", "t")
    publisher, answers = connect(broker.port)
    committed = publisher.begin()
    publisher.send(destination="/topic/py-tx", body="one", transaction=committed)
    publisher.send(destination="/topic/py-tx", body="two", transaction=committed)
    time.sleep(0.3)
    assert bodies(seen) == [], bodies(seen)
    publisher.commit(committed)
    seen.wait_for("the committed messages", lambda: len(seen.messages) >= 2)
    aborted = publisher.begin()
    publisher.send(destination="/topic/py-tx", body="never", transaction=aborted)
    publisher.abort(aborted, headers={"receipt": "aborted"})
    answers.wait_for("the ABORT receipt", lambda: "aborted" in answers.receipts)
    publisher.send(destination="/topic/py-tx", body="after")
    seen.wait_for("the message after the abort", lambda: len(seen.messages) >= 3)
    assert bodies(seen) == ["one", "two", "after"], bodies(seen)
    subscriber.disconnect()
    publisher.disconnect()


def error_then_close(port, send, expected):
    """Connects, lets `send` misbehave, and checks the ERROR and the close,
    while a canary subscriber keeps receiving."""
    canary, canary_seen = connect(port)
    subscribe(canary, canary_seen, "/topic/py-canary", "c")
    bad, seen = connect(port)
    send(bad)
    seen.wait_for("an ERROR", lambda: seen.errors)
    message = seen.errors[0].headers.get("message", "")
    assert expected in message, message
    seen.wait_for("the close", lambda: seen.disconnected)
    publisher, _ = connect(port)
    publisher.send(destination="/topic/py-canary", body="still here")
    canary_seen.wait_for("the canary's message", lambda: canary_seen.messages)
    assert bodies(canary_seen) == ["still here"], bodies(canary_seen)
    canary.disconnect()
    publisher.disconnect()


def test_a_malformed_frame_gets_an_error_then_the_close(broker):
    error_then_close(
        broker.port,
        lambda conn: conn.transport.send(b"PUBLISH\ndestination:/topic/x\n\n\x00"),
        "unknown command",
    )


def test_a_frame_over_the_limit_gets_an_error_naming_the_key(broker):
    error_then_close(
        broker.port,
        lambda conn: conn.send(destination="/topic/py", body="x" * (128 * 1024)),
        "limits.max_body_size",
    )


def test_tls(broker, ca):
    subscriber, seen = connect(broker.port, tls_ca=ca)
    subscribe(subscriber, seen, "/topic/py-tls", "s")
    publisher, _ = connect(broker.port, heartbeats=(500, 500), tls_ca=ca)
    publisher.send(destination="/topic/py-tls", body="加密的")
    seen.wait_for("the message over TLS", lambda: seen.messages)
    assert bodies(seen) == ["加密的"], bodies(seen)
    subscriber.disconnect()
    publisher.disconnect()


def certificate():
    """A self-signed certificate for localhost, made with the openssl command."""
    cert, key = os.path.join(SCRATCH, "cert.pem"), os.path.join(SCRATCH, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


def main():
    passed, failed = 0, 0

    def run(test, *args):
        nonlocal passed, failed
        try:
            test(*args)
            passed += 1
            print(f"ok - {test.__name__}", flush=True)
        except Exception:
            failed += 1
            print(f"not ok - {test.__name__}", flush=True)
            traceback.print_exc()

    plain = Broker("plain", '[stomp]\nheartbeat_min_ms = 100\n[tcp]\nbind = "127.0.0.1:0"\n')
    cert, key = certificate()
    tls = Broker(
        "tls",
        f'[tcp]\nbind = "127.0.0.1:0"\n[tcp.tls]\ncert_file = "{cert}"\nkey_file = "{key}"\n',
    )
    try:
        run(test_a_thousand_messages_in_order, plain)
        run(test_heart_beats_both_ways, plain)
        run(test_transactions, plain)
        run(test_a_malformed_frame_gets_an_error_then_the_close, plain)
        run(test_a_frame_over_the_limit_gets_an_error_naming_the_key, plain)
        run(test_tls, tls, cert)
    finally:
        for broker in (plain, tls):
            code = broker.stop()
            if code != 0:
                failed += 1
                print(f"not ok - stomphub exited with {code}:\n" + "".join(broker.log), flush=True)
    print(f"python: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
