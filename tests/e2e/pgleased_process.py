"""The pgleased process under test, and plain HTTP calls to it (shared by the Python e2e tests)."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def error_code(self):
        body = self.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return body["error"].get("code")
        return None

    def error_message(self):
        body = self.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return body["error"].get("message")
        return None


def read_response(raw):
    headers = {}
    for name, value in raw.getheaders():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Response(raw.status, headers, raw.read())


def http_request(port, method, path, body=None, headers=None, timeout=75, conn=None):
    """One request; body is bytes, a JSON-able value, or None (no body)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    sent_headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    if body is not None:
        sent_headers.setdefault("Content-Type", "application/json")
    try:
        try:
            conn.request(method, path, body=body, headers=sent_headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_response(conn.getresponse())
    finally:
        if own:
            conn.close()


METRIC_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
METRIC_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_samples(port, timeout=30):
    """GET /metrics as {(name, frozenset of (label, value)): value}."""
    response = http_request(port, "GET", "/metrics", timeout=timeout)
    if response.status != 200:
        raise RuntimeError(f"GET /metrics answered {response.status}")
    samples = {}
    for line in response.body.decode().splitlines():
        match = METRIC_SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = frozenset(METRIC_LABEL.findall(match.group(3) or ""))
            samples[(match.group(1), labels)] = float(match.group(4))
    return samples


def raw_exchange(port, data, timeout=30):
    """Sends raw bytes, then reads one HTTP response; returns (Response or None, closed after)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method="GET")
        response.begin()
        result = read_response(response)
        try:
            sock.settimeout(2)
            closed = sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        except socket.timeout:
            closed = False
        return result, closed
    finally:
        sock.close()


class Daemon:
    """pgleased on an embedded cluster in data_dir, listening on a free loopback port."""

    def __init__(self, binary, name, log_path, data_dir, config=None, env=None, extra_args=(),
                 cwd=None):
        self.name = name
        self.log_path = log_path
        self.data_dir = Path(data_dir)
        args = [str(binary)]
        if config is not None:
            args += ["--config", str(config)]
        args += ["--data-dir", str(data_dir),
                 "--listen", "127.0.0.1:0", "--log-level", "info", *extra_args]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PGLEASE_")}
        clean.update(env or {})
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, env=clean, cwd=cwd)
        self.port = None

    def log_tail(self, lines=25):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n    ".join(text[-lines:])

    def wait_listening(self, deadline):
        pattern = re.compile(r"http listening on 127\.0\.0\.1:(\d+)")
        while time.monotonic() < deadline:
            match = pattern.search(self.log_path.read_text(errors="replace"))
            if match:
                self.port = int(match.group(1))
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def embedded_socket(self):
        """(unix socket directory, port) of the embedded cluster, where the OS user may log in as
        the superuser postgres."""
        return self.data_dir / "run", int((self.data_dir / "port").read_text().strip())

    def stop(self, timeout=60):
        """SIGTERM; the exit status, or None when it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            status = None
        self.log.close()
        return status
