#!/usr/bin/python3
"""Checks proto/openapi.yaml, then checks a built pgleased against it over real HTTP.

Usage: openapi_conformance.py PATH/TO/pgleased

1. The document: OpenAPI 3.1 structure, every $ref, every schema a valid JSON Schema 2020-12,
   path parameters, operationIds, examples and defaults, and the official OAS 3.1 schema
   (through the npm package of tests/e2e/openapi, installed by deploy/install-deps.sh).
2. The daemon: starts pgleased on an embedded cluster with one migrations template `app`, walks
   every endpoint and method, and checks each answer's status, headers and body against the
   operation it belongs to. A second pgleased with PGLEASE_TOKEN set checks authentication.

Prints one line per check and finally `N passed, M failed`; exits 1 when anything failed.
"""

import datetime
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import jsonschema
import psycopg2
import yaml
from jsonschema import Draft202012Validator

from check_results import Results
from pgleased_process import Daemon, Response, http_request, raw_exchange

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "proto" / "openapi.yaml"
SPEC_URI = "https://pglease.invalid/proto/openapi.yaml"
OAS_VALIDATOR = (ROOT / "tests" / "e2e" / "openapi" / "node_modules" / "@seriousme" /
                 "openapi-schema-validator" / "bin" / "validate-api-cli.js")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PATH_ITEM_KEYS = {"$ref", "summary", "description", "servers", "parameters", *METHODS}
ZERO_ID = "0" * 32
TOKEN = "secret"


# ---------------------------------------------------------------- loading and resolving the document


class JsonCompatibleLoader(yaml.SafeLoader):
    """A YAML loader that keeps dates and times as the strings they are in JSON, and refuses a
    key that a mapping repeats (which YAML loaders otherwise resolve silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


JsonCompatibleLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def json_pointer(doc, pointer):
    """The value at a JSON pointer ("/a/b") in doc; raises KeyError/IndexError when absent."""
    node = doc
    if pointer == "":
        return node
    if not pointer.startswith("/"):
        raise KeyError(pointer)
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict):
            node = node[token]
        else:
            raise KeyError(token)
    return node


def deref(doc, node):
    """Follows a Reference Object ($ref to another part of the document) until a real object."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise KeyError(f"circular $ref {ref}")
        seen.add(ref)
        node = json_pointer(doc, ref[1:])
    return node


def walk(node, path=""):
    """Yields (json pointer, value) of every value in node."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{escape(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def format_checker():
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value):
        if not isinstance(value, str):
            return True
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return checker


class SchemaValidators:
    """Validators for any schema of the document, resolving its $refs against the whole document."""

    def __init__(self, doc):
        self.formats = format_checker()
        try:
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012
        except ImportError:
            resolver = jsonschema.RefResolver(base_uri=SPEC_URI, referrer=doc)
            self.options = {"resolver": resolver}
        else:
            resource = Resource(contents=doc, specification=DRAFT202012)
            self.options = {"registry": Registry().with_resource(SPEC_URI, resource)}

    def at(self, pointer):
        return Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"},
                                    format_checker=self.formats, **self.options)

    def errors(self, pointer, instance):
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in self.at(pointer).iter_errors(instance)]


def escape(token):
    """A JSON pointer token."""
    return token.replace("~", "~0").replace("/", "~1")


def schema_pointers(doc):
    """Pointers to every Schema Object of the document that is not inside another schema."""
    found = [f"/components/schemas/{escape(name)}"
             for name in doc.get("components", {}).get("schemas", {})]
    for pointer, node in walk(doc):
        if (pointer.endswith("/schema") and isinstance(node, dict) and
                not pointer.startswith("/components/schemas/")):
            found.append(pointer)
    return found


# ---------------------------------------------------------------- part 1: the document


def check_document(results):
    """Checks proto/openapi.yaml; returns the document when it is usable for the HTTP checks."""
    try:
        text = SPEC_PATH.read_text(encoding="utf-8")
        doc = yaml.load(text, Loader=JsonCompatibleLoader)
    except (OSError, yaml.YAMLError) as error:
        results.check("document: proto/openapi.yaml parses as YAML", False, str(error))
        return None
    results.check("document: proto/openapi.yaml parses as YAML", isinstance(doc, dict),
                  "the top level is not a mapping")
    if not isinstance(doc, dict):
        return None

    problems = []
    try:
        json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as error:
        problems.append(str(error))
    for pointer, node in walk(doc):
        if isinstance(node, dict) and any(not isinstance(k, str) for k in node):
            problems.append(f"{pointer or '/'} has a key that is not a string")
    results.record("document: is plain JSON data (string keys, no YAML-only types)", problems)

    version = doc.get("openapi")
    results.check("document: openapi is 3.1.x",
                  isinstance(version, str) and re.fullmatch(r"3\.1\.\d+", version) is not None,
                  f"openapi is {version!r}")
    info = doc.get("info")
    results.check("document: info has a title and a version",
                  isinstance(info, dict) and isinstance(info.get("title"), str) and
                  isinstance(info.get("version"), str), f"info is {info!r}")
    paths = doc.get("paths")
    results.check("document: paths is a non-empty map of /-rooted paths",
                  isinstance(paths, dict) and paths and all(
                      isinstance(p, str) and p.startswith("/") for p in paths),
                  f"paths is {type(paths).__name__}")
    if not isinstance(paths, dict):
        return None

    problems = []
    for pointer, node in walk(doc):
        if isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                problems.append(f"{pointer}: $ref {ref!r} is not local to the document")
                continue
            try:
                json_pointer(doc, urllib.parse.unquote(ref[1:]))
            except (KeyError, IndexError, ValueError):
                problems.append(f"{pointer}: $ref {ref} does not resolve")
    results.record("document: every $ref resolves", problems)
    if problems:
        return None

    problems = []
    for pointer in schema_pointers(doc):
        try:
            Draft202012Validator.check_schema(json_pointer(doc, pointer))
        except jsonschema.SchemaError as error:
            problems.append(f"{pointer}: {error.message}")
    results.record("document: every schema is a valid JSON Schema 2020-12", problems)
    if problems:
        return None

    validators = SchemaValidators(doc)
    problems = []
    for pointer, node in walk(doc.get("components", {}).get("schemas", {}), "/components/schemas"):
        if not isinstance(node, dict) or "$ref" in node and len(node) == 1:
            continue
        if isinstance(node.get("examples"), list) and _is_schema_pointer(pointer):
            for index, example in enumerate(node["examples"]):
                for error in validators.errors(pointer, example):
                    problems.append(f"{pointer}/examples/{index}: {error}")
        if "default" in node and _is_schema_pointer(pointer):
            for error in validators.errors(pointer, node["default"]):
                problems.append(f"{pointer}/default: {error}")
    for pointer, node in walk(doc):
        if pointer.endswith("/schema") and isinstance(node, dict) and "default" in node:
            for error in validators.errors(pointer, node["default"]):
                problems.append(f"{pointer}/default: {error}")
    results.record("document: every example and default validates against its schema", problems)

    try:
        path_problems, id_problems, response_problems, security_problems = (
            operation_problems(doc))
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as error:
        malformed = [f"a path item or operation is malformed: {error!r}"]
        path_problems, id_problems, response_problems, security_problems = (malformed,) * 4
    results.record("document: path items and parameters (every path parameter declared)",
                   path_problems)
    results.record("document: every operation has responses, each with a description",
                   response_problems)
    results.record("document: every operation has an operationId, each unique", id_problems)
    results.record("document: bearer security applies to every /v1 operation and only there",
                   security_problems)
    for scheme_name, scheme in doc.get("components", {}).get("securitySchemes", {}).items():
        results.check(f"document: security scheme {scheme_name} is HTTP bearer",
                      scheme.get("type") == "http" and scheme.get("scheme") == "bearer",
                      f"{scheme!r}")

    label = ("document: valid against the official OpenAPI 3.1 schema "
             "(@seriousme/openapi-schema-validator)")
    node = shutil.which("node")
    if not OAS_VALIDATOR.is_file() or node is None:
        missing = "node" if node is None else str(OAS_VALIDATOR.relative_to(ROOT))
        results.check(label, False, f"{missing} is missing: run deploy/install-deps.sh")
    else:
        try:
            run = subprocess.run([node, str(OAS_VALIDATOR), str(SPEC_PATH)], capture_output=True,
                                 text=True, timeout=120, check=False)
            output, returncode = run.stdout, run.returncode
        except subprocess.TimeoutExpired:
            output, returncode = "", None
        try:
            verdict = json.loads(output)
        except ValueError:
            verdict = {"valid": False, "errors": f"exit status {returncode}: {output}"}
        results.check(label, returncode == 0 and verdict.get("valid") is True,
                      json.dumps(verdict.get("errors"))[:2000])

    return doc if results.failed == 0 else None


def operation_problems(doc):
    """Problems of the path items and operations: (paths, operationIds, responses, security)."""
    paths = doc["paths"]
    operation_ids = {}
    path_problems, id_problems, response_problems, security_problems = [], [], [], []
    schemes = doc.get("components", {}).get("securitySchemes", {})
    tags = {t.get("name") for t in doc.get("tags") or []}
    if "security" in doc:
        security_problems.append("a top-level security requirement would apply outside /v1")
    for path, item in paths.items():
        item = deref(doc, item)
        for key in item:
            if key not in PATH_ITEM_KEYS and not key.startswith("x-"):
                path_problems.append(f"{path}: unknown key {key}")
        templated = re.findall(r"\{([^}/]+)\}", path)
        if len(templated) != len(set(templated)):
            path_problems.append(f"{path}: a path parameter appears twice")
        path_level = {}
        for param in item.get("parameters") or []:
            param = deref(doc, param)
            path_level[(param.get("name"), param.get("in"))] = param
        operations = [(m, item[m]) for m in METHODS if m in item]
        if not operations:
            path_problems.append(f"{path}: no operation")
        for method, op in operations:
            where = f"{method.upper()} {path}"
            params = dict(path_level)
            keys = [(deref(doc, p).get("name"), deref(doc, p).get("in"))
                    for p in op.get("parameters") or []]
            if len(keys) != len(set(keys)):
                path_problems.append(f"{where}: a parameter is declared twice")
            for param in op.get("parameters") or []:
                param = deref(doc, param)
                params[(param.get("name"), param.get("in"))] = param
            declared = {name for (name, where_in) in params if where_in == "path"}
            for name in templated:
                if name not in declared:
                    path_problems.append(f"{where}: path parameter {{{name}}} is not declared")
            for name in declared - set(templated):
                path_problems.append(f"{where}: path parameter {name} is not in the path")
            for (name, where_in), param in params.items():
                if where_in == "path" and param.get("required") is not True:
                    path_problems.append(f"{where}: path parameter {name} is not required: true")
                if "schema" not in param and "content" not in param:
                    path_problems.append(f"{where}: parameter {name} has no schema")
            op_id = op.get("operationId")
            if not isinstance(op_id, str) or not op_id:
                id_problems.append(f"{where}: no operationId")
            elif op_id in operation_ids:
                id_problems.append(f"{where}: operationId {op_id} also on {operation_ids[op_id]}")
            else:
                operation_ids[op_id] = where
            for tag in op.get("tags", []):
                if tag not in tags:
                    path_problems.append(f"{where}: tag {tag} is not declared in tags")
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                response_problems.append(f"{where}: no responses")
                continue
            for code, response in responses.items():
                if not re.fullmatch(r"default|[1-5](\d\d|XX)", str(code)):
                    response_problems.append(f"{where}: response key {code!r}")
                response = deref(doc, response)
                if not isinstance(response, dict):
                    response_problems.append(f"{where} {code}: not a Response Object")
                    continue
                if not isinstance(response.get("description"), str):
                    response_problems.append(f"{where} {code}: no description")
                for media, content in response.get("content", {}).items():
                    if "schema" not in content:
                        response_problems.append(f"{where} {code} {media}: no schema")
                if str(code) == "204" and response.get("content"):
                    response_problems.append(f"{where} 204: has content")
            if "requestBody" in op:
                body = deref(doc, op["requestBody"])
                if not body.get("content"):
                    response_problems.append(f"{where}: requestBody has no content")
                for code in ("400", "413"):
                    if code not in responses:
                        response_problems.append(f"{where}: takes a body but documents no {code}")
            security = op.get("security")
            for requirement in security or []:
                for scheme in requirement:
                    if scheme not in schemes:
                        security_problems.append(f"{where}: unknown security scheme {scheme}")
            if path.startswith("/v1/"):
                if not security or not any("bearerAuth" in r for r in security):
                    security_problems.append(f"{where}: no bearerAuth security requirement")
                if "401" not in responses:
                    security_problems.append(f"{where}: documents no 401")
            elif any(security or []):
                security_problems.append(f"{where}: needs authentication outside /v1")
    return path_problems, id_problems, response_problems, security_problems


def _is_schema_pointer(pointer):
    """Whether a pointer inside components/schemas names a schema (not a keyword's value)."""
    parts = pointer.split("/")[3:]
    non_schema_parents = {"examples", "enum", "const", "default", "required", "type"}
    return not any(part in non_schema_parents for part in parts[:-1]) and (
        not parts or parts[-1] not in non_schema_parents)


# ---------------------------------------------------------------- HTTP


# ---------------------------------------------------------------- conformance of answers


class Contract:
    def __init__(self, doc):
        self.doc = doc
        self.validators = SchemaValidators(doc)
        self.templates = []
        for path in doc["paths"]:
            segments = path.strip("/").split("/")
            self.templates.append((path, segments))
        self.templates.sort(key=lambda t: -sum(not s.startswith("{") for s in t[1]))

    def path_item(self, path):
        segments = urllib.parse.urlsplit(path).path.strip("/").split("/")
        for template, pattern in self.templates:
            if len(pattern) == len(segments) and all(
                    p.startswith("{") or p == s for p, s in zip(pattern, segments)) and all(
                    s for s in segments):
                return template, deref(self.doc, self.doc["paths"][template])
        return None, None

    def documented_methods(self, path_item):
        return {m.upper() for m in METHODS if m in path_item}

    def response_spec(self, method, path, status):
        """(pointer to the response object, operation, problem) for an answer."""
        template, item = self.path_item(path)
        if item is None:
            return "/components/responses/NotFound", None, None if status == 404 else (
                f"{status} for a path the document does not have (only 404 not_found is)")
        op = item.get(method.lower())
        if op is None:
            return "/components/responses/MethodNotAllowed", None, None if status == 405 else (
                f"{status} for {method} on {template}, which the document does not have "
                f"(only 405 is)")
        base = f"/paths/{escape(template)}/{method.lower()}/responses"
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in op["responses"]:
                return f"{base}/{key}", op, None
        return None, op, f"status {status} is not documented for {method} {template}"

    def conformance(self, method, path, response):
        """Problems of one answer against the document (status, headers, media type, body)."""
        pointer, _, problem = self.response_spec(method, path, response.status)
        if problem:
            return [problem]
        spec = json_pointer(self.doc, pointer)
        while "$ref" in spec:
            pointer = spec["$ref"][1:]
            spec = json_pointer(self.doc, pointer)
        problems = []
        for name, header in spec.get("headers", {}).items():
            header_pointer = f"{pointer}/headers/{name}"
            while "$ref" in header:
                header_pointer = header["$ref"][1:]
                header = json_pointer(self.doc, header_pointer)
            value = response.header(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"required header {name} is missing")
                continue
            instance = value
            if header.get("schema", {}).get("type") == "integer":
                try:
                    instance = int(value)
                except ValueError:
                    problems.append(f"header {name}: {value!r} is not an integer")
                    continue
            problems += [f"header {name}: {e}"
                         for e in self.validators.errors(f"{header_pointer}/schema", instance)]
        content = spec.get("content")
        if not content:
            if response.body:
                problems.append(f"body {response.body[:200]!r} where none is documented")
            return problems
        media = (response.header("Content-Type") or "").split(";")[0].strip().lower()
        if media not in content:
            problems.append(f"Content-Type {response.header('Content-Type')!r} is not one of "
                            f"{sorted(content)}")
            return problems
        if media == "application/json":
            instance = response.json()
            if instance is None:
                return problems + [f"body is not JSON: {response.body[:200]!r}"]
        else:
            try:
                instance = response.body.decode("utf-8")
            except UnicodeDecodeError:
                return problems + ["body is not UTF-8 text"]
        schema_pointer = f"{pointer}/content/{escape(media)}/schema"
        problems += [f"body {e}" for e in self.validators.errors(schema_pointer, instance)]
        return problems

    def request_body_errors(self, method, path, body):
        """Errors of a request body against the operation's requestBody schema (None: no schema)."""
        template, item = self.path_item(path)
        op = item.get(method.lower()) if item else None
        if not op or "requestBody" not in op:
            return None
        request_body = op["requestBody"]
        pointer = f"/paths/{escape(template)}/{method.lower()}/requestBody"
        while "$ref" in request_body:
            pointer = request_body["$ref"][1:]
            request_body = json_pointer(self.doc, pointer)
        return self.validators.errors(f"{pointer}/content/application~1json/schema", body)


class Walk:
    """Sends requests to one daemon and records a check per answer."""

    def __init__(self, results, contract, port, label_prefix="", token=None):
        self.results = results
        self.contract = contract
        self.port = port
        self.prefix = label_prefix
        self.token = token

    def call(self, label, method, path, body=None, *, status, code=None, names=None,
             request_valid=None, headers=None, timeout=75):
        """Sends one request; checks status, error code, the field the message names, and the
        answer's conformance to the document. request_valid: whether the JSON body must (True) or
        must not (False) validate against the operation's request schema."""
        sent = dict(headers or {})
        if self.token and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        try:
            response = http_request(self.port, method, path, body, sent, timeout=timeout)
        except (OSError, http.client.HTTPException) as error:
            self.results.check(f"{self.prefix}{label}", False, f"{method} {path}: {error!r}")
            return None
        problems = []
        expected = status if isinstance(status, (set, tuple)) else {status}
        if response.status not in expected:
            problems.append(f"status {response.status}, expected {'/'.join(map(str, sorted(expected)))}"
                            f" (body {response.body[:300]!r})")
        if code is not None and response.error_code() != code:
            problems.append(f"error code {response.error_code()!r}, expected {code!r}")
        if names is not None:
            message = response.error_message() or ""
            if names not in message:
                problems.append(f"message {message!r} does not name {names!r}")
        problems += self.contract.conformance(method, path, response)
        if request_valid is not None and not isinstance(body, bytes):
            errors = self.contract.request_body_errors(method, path, {} if body is None else body)
            if errors is None:
                problems.append("the operation documents no request body")
            elif request_valid and errors:
                problems.append(f"the request body is invalid per the document: {errors}")
            elif not request_valid and not errors:
                problems.append("the document's request schema accepts this body")
        self.results.record(f"{self.prefix}{label}", problems)
        if response.status == 201 and response.status not in expected:
            self.undo(method, path, response.json() or {}, sent)
        return response

    def undo(self, method, path, created, headers):
        """Releases a lease, or aborts a build, that a refused request should not have made."""
        if method == "POST" and path.endswith("/leases") and isinstance(created.get("id"), str):
            http_request(self.port, "DELETE", f"/v1/leases/{created['id']}", headers=headers)
        build = created.get("build")
        if method == "PUT" and isinstance(build, dict):
            http_request(self.port, "POST", f"/v1/templates/{build.get('template')}/builds/"
                         f"{build.get('fingerprint')}/abort", {"build_id": build.get("id")},
                         headers=headers)


# ---------------------------------------------------------------- the daemon


def start_and_wait_ready(results, daemon, contract, probe="/readyz"):
    """Waits for the daemon's port in its log, then for 200 from probe."""
    label = f"{daemon.name} daemon"
    if not daemon.wait_listening(time.monotonic() + 60):
        results.check(f"{label}: logs 'http listening on 127.0.0.1:<port>'", False,
                      f"exit status {daemon.process.poll()}; log:\n    {daemon.log_tail()}")
        return False
    results.check(f"{label}: logs 'http listening on 127.0.0.1:<port>'", True)
    deadline = time.monotonic() + 60
    seen_not_ready = False
    last = None
    while time.monotonic() < deadline:
        try:
            last = http_request(daemon.port, "GET", probe, timeout=10)
        except (OSError, http.client.HTTPException) as error:
            last = error
            time.sleep(0.2)
            continue
        if last.status == 200:
            break
        if last.status == 503 and probe == "/readyz" and not seen_not_ready:
            seen_not_ready = True
            results.record(f"{label}: GET /readyz while starting -> 503 not_ready", [
                None if last.error_code() == "not_ready" else f"code {last.error_code()!r}",
                *contract.conformance("GET", "/readyz", last)])
        time.sleep(0.2)
    ok = isinstance(last, Response) and last.status == 200
    results.check(f"{label}: GET {probe} becomes 200 within 60 s", ok,
                  f"last answer {getattr(last, 'status', last)!r}; log:\n    {daemon.log_tail()}")
    return ok


def wait_template_ready(results, port, name, timeout=90):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        response = http_request(port, "GET", f"/v1/templates/{name}", timeout=10)
        state = (response.json() or {}).get("state") if response.status == 200 else response.status
        if state == "ready":
            break
        time.sleep(0.2)
    return results.check(f"template {name} becomes ready within {timeout} s", state == "ready",
                         f"state {state!r}")


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds_until(text):
    return (parse_time(text) - datetime.datetime.now(datetime.timezone.utc)).total_seconds()


def dsn_problems(lease):
    """Whether the dsn says what host, port, user, password and database say."""
    try:
        url = urllib.parse.urlsplit(lease["dsn"])
        parts = {
            "user": urllib.parse.unquote(url.username or ""),
            "password": urllib.parse.unquote(url.password or ""),
            "host": url.hostname,
            "port": url.port,
            "database": urllib.parse.unquote(url.path.lstrip("/")),
        }
    except (KeyError, ValueError) as error:
        return [f"dsn does not parse: {error}"]
    return [f"dsn {key} {value!r} != {key} {lease.get(key)!r}"
            for key, value in parts.items() if value != lease.get(key)]


def template_named(response, name):
    body = response.json() if response else None
    for template in (body or {}).get("templates", []):
        if template.get("name") == name:
            return template
    return None


# ---------------------------------------------------------------- the walk of the main daemon


def walk_health(w, results, contract):
    w.call("GET /healthz -> 200 ok", "GET", "/healthz", status=200)
    w.call("GET /readyz -> 200 ready", "GET", "/readyz", status=200)
    response = http_request(w.port, "GET", "/metrics")
    if response.status == 404 and response.error_code() == "not_found":
        results.skip("GET /metrics -> 200 Prometheus text", "the daemon has no /metrics yet")
    else:
        problems = contract.conformance("GET", "/metrics", response)
        if response.status != 200:
            problems.append(f"status {response.status}")
        text = response.body.decode("utf-8", "replace")
        if not re.search(r"^# TYPE pglease_\w+ \w+$", text, re.M):
            problems.append("no '# TYPE pglease_…' line")
        results.record("GET /metrics -> 200 Prometheus text", problems)


def walk_templates(w, results):
    response = w.call("GET /v1/templates -> 200", "GET", "/v1/templates", status=200)
    app = template_named(response, "app")
    results.check("GET /v1/templates lists app: migrations, ready, min_idle 1, max_total 2",
                  app is not None and app["source"] == "migrations" and app["state"] == "ready" and
                  app["pool"]["min_idle"] == 1 and app["pool"]["max_total"] == 2, f"app is {app!r}")
    response = w.call("GET /v1/templates/app -> 200", "GET", "/v1/templates/app", status=200)
    body = response.json() if response else None
    results.check("GET /v1/templates/app names app with a 64-hex fingerprint",
                  isinstance(body, dict) and body.get("name") == "app" and
                  re.fullmatch(r"[0-9a-f]{64}", body.get("fingerprint", "")) is not None,
                  f"body {body!r}")
    w.call("GET /v1/templates/nosuch -> 404 unknown_template", "GET", "/v1/templates/nosuch",
           status=404, code="unknown_template")
    w.call("GET /v1/templates?bogus=1 -> 400 invalid_argument", "GET", "/v1/templates?bogus=1",
           status=400, code="invalid_argument", names="bogus")


def walk_leases(w, results):
    base = "/v1/templates/app/leases"
    w.call("POST /v1/templates/nosuch/leases -> 404 unknown_template", "POST",
           "/v1/templates/nosuch/leases", {}, status=404, code="unknown_template",
           request_valid=True)

    w.call("POST /v1/templates/app/leases {fingerprint: no such version} -> 404 unknown_version",
           "POST", base, {"fingerprint": "no-such-version"}, status=404, code="unknown_version",
           request_valid=True)
    w.call("POST /v1/templates/app/leases {fingerprint: not one} -> 400 invalid_argument",
           "POST", base, {"fingerprint": "not one!"}, status=400, code="invalid_argument",
           names="fingerprint", request_valid=False)

    request = {"ttl_seconds": 30, "wait_seconds": 60, "owner": "openapi-conformance",
               "labels": {"suite": "openapi", "worker": "gw0"}}
    response = w.call("POST /v1/templates/app/leases (all fields) -> 201 Lease", "POST", base,
                      request, status=201, request_valid=True)
    a = response.json() if response and response.status == 201 else None
    if a is None:
        results.check("lease A acquired; the lease walk needs it", False, "no lease")
        return
    lifetime = (parse_time(a["expires_at"]) - parse_time(a["acquired_at"])).total_seconds()
    results.record("acquired lease: template, owner, labels as asked; expires_at = acquired_at + ttl", [
        None if a["template"] == "app" else f"template {a['template']!r}",
        None if a["owner"] == request["owner"] else f"owner {a['owner']!r}",
        None if a["labels"] == request["labels"] else f"labels {a['labels']!r}",
        None if abs(lifetime - 30) <= 1 else f"expires_at - acquired_at = {lifetime} s",
    ])
    results.record("acquired lease: dsn agrees with host, port, user, password, database",
                   dsn_problems(a))
    lease_path = f"/v1/leases/{a['id']}"

    response = w.call("GET /v1/leases/{id} -> 200 Lease", "GET", lease_path, status=200)
    got = response.json() if response else None
    results.check("GET /v1/leases/{id} returns the lease as acquired", got == a,
                  f"{got!r} != {a!r}")
    response = w.call("GET /v1/leases -> 200", "GET", "/v1/leases", status=200)
    listed = [s for s in ((response.json() or {}).get("leases", []) if response else [])
              if s.get("database") == a["database"]]
    results.check("GET /v1/leases lists the lease", len(listed) == 1 and all(
        listed[0].get(k) == a[k] for k in listed[0]), f"{listed!r}")
    w.call("GET /v1/leases?bogus=1 -> 400 invalid_argument", "GET", "/v1/leases?bogus=1",
           status=400, code="invalid_argument", names="bogus")

    response = w.call("POST /v1/leases/{id}/renew {ttl_seconds: 90} -> 200 Lease", "POST",
                      f"{lease_path}/renew", {"ttl_seconds": 90}, status=200, request_valid=True)
    if response and response.status == 200:
        left = seconds_until(response.json()["expires_at"])
        results.check("renew moves expires_at to now + 90 s", 85 <= left <= 91, f"{left:.1f} s left")
    response = w.call("POST /v1/leases/{id}/renew (no body) -> 200 Lease", "POST",
                      f"{lease_path}/renew", status=200, request_valid=True)
    if response and response.status == 200:
        left = seconds_until(response.json()["expires_at"])
        results.check("renew without a body uses the template's ttl_seconds (60)",
                      55 <= left <= 61, f"{left:.1f} s left")
    w.call("POST renew {} -> 200 Lease", "POST", f"{lease_path}/renew", {}, status=200,
           request_valid=True)
    for label, body, names in [
        ("ttl_seconds 0", {"ttl_seconds": 0}, "ttl_seconds"),
        ("ttl_seconds over max_ttl_seconds (121)", {"ttl_seconds": 121}, "ttl_seconds"),
        ("ttl_seconds a string", {"ttl_seconds": "60"}, "ttl_seconds"),
        ("unknown field", {"ttl": 60}, "ttl"),
    ]:
        w.call(f"POST renew ({label}) -> 400 invalid_argument", "POST", f"{lease_path}/renew",
               body, status=400, code="invalid_argument", names=names,
               request_valid=None if "121" in label else False)
    w.call("POST renew (malformed JSON) -> 400 invalid_json", "POST", f"{lease_path}/renew",
           b'{"ttl_seconds": ', status=400, code="invalid_json")
    w.call("POST renew (a JSON array) -> 400 invalid_json", "POST", f"{lease_path}/renew",
           b"[60]", status=400, code="invalid_json")

    walk_reset(w, results, a)

    response = w.call("POST /v1/templates/app/leases {fingerprint: the version's} -> 201 Lease",
                      "POST", base, {"fingerprint": a["fingerprint"], "wait_seconds": 60},
                      status=201, request_valid=True)
    pinned = response.json() if response and response.status == 201 else None
    results.check("a lease by fingerprint is of that version",
                  pinned is not None and pinned["fingerprint"] == a["fingerprint"], f"{pinned}")
    if pinned is not None:
        w.call("DELETE the lease by fingerprint -> 204", "DELETE", f"/v1/leases/{pinned['id']}",
               status=204)

    response = w.call("POST /v1/templates/app/leases (no body) -> 201 Lease", "POST", base,
                      status=201, request_valid=True)
    b = response.json() if response and response.status == 201 else None
    w.call("POST acquire {wait_seconds: 0} with the pool at max_total -> 503 pool_exhausted",
           "POST", base, {"wait_seconds": 0}, status=503, code="pool_exhausted",
           request_valid=True)

    w.call("DELETE /v1/leases/{id}?mode=reuse -> 204", "DELETE", f"{lease_path}?mode=reuse",
           status=204)
    w.call("GET a released lease -> 404 unknown_lease", "GET", lease_path, status=404,
           code="unknown_lease")
    w.call("DELETE a released lease -> 404 unknown_lease", "DELETE", lease_path, status=404,
           code="unknown_lease")
    w.call("POST renew a released lease -> 404 unknown_lease", "POST", f"{lease_path}/renew", {},
           status=404, code="unknown_lease")
    w.call("GET /v1/leases/<unknown id> -> 404 unknown_lease", "GET", f"/v1/leases/{ZERO_ID}",
           status=404, code="unknown_lease")
    w.call("POST /v1/leases/<unknown id>/renew -> 404 unknown_lease", "POST",
           f"/v1/leases/{ZERO_ID}/renew", {"ttl_seconds": 10}, status=404, code="unknown_lease")
    w.call("DELETE /v1/leases/<unknown id> -> 404 unknown_lease", "DELETE",
           f"/v1/leases/{ZERO_ID}", status=404, code="unknown_lease")
    w.call("POST reset a released lease -> 404 unknown_lease", "POST", f"{lease_path}/reset",
           status=404, code="unknown_lease")
    w.call("POST /v1/leases/<unknown id>/reset -> 404 unknown_lease", "POST",
           f"/v1/leases/{ZERO_ID}/reset", status=404, code="unknown_lease")

    response = w.call("POST acquire {wait_seconds: 30} after a reuse -> 201 Lease", "POST", base,
                      {"wait_seconds": 30}, status=201, request_valid=True)
    d = response.json() if response and response.status == 201 else None
    if d is not None:
        d_path = f"/v1/leases/{d['id']}"
        for label, query, names in [
            ("mode=bogus", "mode=bogus", "mode"),
            ("mode=keep&keep_seconds=61 (over max_keep_seconds)", "mode=keep&keep_seconds=61",
             "keep_seconds"),
            ("mode=keep&keep_seconds=0", "mode=keep&keep_seconds=0", "keep_seconds"),
            ("mode=keep&keep_seconds=abc", "mode=keep&keep_seconds=abc", "keep_seconds"),
            ("mode=reuse&keep_seconds=5 (keep_seconds without mode=keep)",
             "mode=reuse&keep_seconds=5", "keep_seconds"),
            ("keep_seconds=5 without mode", "keep_seconds=5", "keep_seconds"),
            ("unknown parameter", "mode=reuse&bogus=1", "bogus"),
        ]:
            w.call(f"DELETE ?{label} -> 400 invalid_argument", "DELETE", f"{d_path}?{query}",
                   status=400, code="invalid_argument", names=names)
        w.call("a refused release leaves the lease: GET -> 200", "GET", d_path, status=200)
        w.call("DELETE /v1/leases/{id}?mode=keep&keep_seconds=30 -> 204", "DELETE",
               f"{d_path}?mode=keep&keep_seconds=30", status=204)
        kept = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            response = http_request(w.port, "GET", "/v1/templates/app", headers=w_auth(w))
            kept = (response.json() or {}).get("pool", {}).get("kept")
            if kept == 1:
                break
            time.sleep(0.2)
        results.check("after mode=keep the template's pool counts 1 kept clone", kept == 1,
                      f"kept = {kept!r}")

    if b is not None:
        w.call("DELETE /v1/leases/{id} (no mode: recycle) -> 204", "DELETE",
               f"/v1/leases/{b['id']}", status=204)
    response = w.call("POST acquire {wait_seconds: 60} after a recycle -> 201 Lease", "POST", base,
                      {"wait_seconds": 60}, status=201, request_valid=True)
    e = response.json() if response and response.status == 201 else None
    if e is not None:
        w.call("DELETE /v1/leases/{id}?mode=recycle -> 204", "DELETE",
               f"/v1/leases/{e['id']}?mode=recycle", status=204)

    largest = {"ttl_seconds": 120, "wait_seconds": 60, "owner": "o" * 200,
               "labels": {f"{i:02d}".ljust(64, "k"): "v" * 256 for i in range(32)}}
    response = w.call("POST acquire (every field at its largest) -> 201 Lease", "POST", base,
                      largest, status=201, request_valid=True)
    if response and response.status == 201:
        lease = response.json()
        results.check("the largest owner and labels come back as sent",
                      lease["owner"] == largest["owner"] and lease["labels"] == largest["labels"])
        w.call("DELETE ?mode=reuse (the largest lease) -> 204", "DELETE",
               f"/v1/leases/{lease['id']}?mode=reuse", status=204)
    w.call("POST acquire?bogus=1 -> 400 invalid_argument", "POST", f"{base}?bogus=1", {},
           status=400, code="invalid_argument", names="bogus")

    for label, body, names in [
        ("ttl_seconds 0", {"ttl_seconds": 0}, "ttl_seconds"),
        ("ttl_seconds over max_ttl_seconds (121)", {"ttl_seconds": 121}, "ttl_seconds"),
        ("ttl_seconds 1.5", {"ttl_seconds": 1.5}, "ttl_seconds"),
        ("ttl_seconds a string", {"ttl_seconds": "30"}, "ttl_seconds"),
        ("wait_seconds -1", {"wait_seconds": -1}, "wait_seconds"),
        ("wait_seconds over max_wait_seconds (61)", {"wait_seconds": 61}, "wait_seconds"),
        ("owner of 201 characters", {"owner": "o" * 201}, "owner"),
        ("owner a number", {"owner": 7}, "owner"),
        ("33 labels", {"labels": {f"k{i}": "v" for i in range(33)}}, "labels"),
        ("a label key of 65 characters", {"labels": {"k" * 65: "v"}}, "labels"),
        ("a label value of 257 characters", {"labels": {"k": "v" * 257}}, "labels"),
        ("a label value that is a number", {"labels": {"k": 1}}, "labels"),
        ("labels an array", {"labels": ["k"]}, "labels"),
        ("unknown field", {"wait_seconds": 0, "colour": "red"}, "colour"),
    ]:
        w.call(f"POST acquire ({label}) -> 400 invalid_argument", "POST", base, body, status=400,
               code="invalid_argument", names=names,
               request_valid=None if "(61)" in label or "(121)" in label else False)
    w.call("POST acquire (malformed JSON) -> 400 invalid_json", "POST", base, b'{"owner": "x"',
           status=400, code="invalid_json")
    w.call("POST acquire (a JSON string) -> 400 invalid_json", "POST", base, b'"x"', status=400,
           code="invalid_json")
    w.call("POST acquire (null) -> 400 invalid_json", "POST", base, b"null", status=400,
           code="invalid_json")


def walk_reset(w, results, lease):
    """A sticky reset: the same lease back, the database as the template left it, an idle
    session kept and a session inside a transaction refusing the reset."""
    path = f"/v1/leases/{lease['id']}/reset"
    session = psycopg2.connect(lease["dsn"], connect_timeout=10)
    try:
        with session.cursor() as cursor:
            cursor.execute("INSERT INTO accounts (email) VALUES ('second@example.com')")
        session.commit()
        with session.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM accounts")
        response = w.call("POST /v1/leases/{id}/reset with a session inside a transaction -> "
                          "409 sessions_busy", "POST", path, status=409, code="sessions_busy",
                          names=str(session.get_backend_pid()))
        if response is not None:
            results.check("409 sessions_busy carries Retry-After",
                          response.header("Retry-After") is not None, f"{response.headers!r}")
        session.rollback()
        response = w.call("POST /v1/leases/{id}/reset (no body) -> 200 ResetLease", "POST", path,
                          status=200, request_valid=True)
        body = response.json() if response and response.status == 200 else None
        if body is not None:
            results.check("reset answers the same lease, reset in place", {
                k: v for k, v in body.items() if k != "reset"} == {
                k: v for k, v in lease.items() if k != "expires_at"} | {
                "expires_at": body["expires_at"]} and body["reset"]["result"] == "reset",
                f"{body!r} vs {lease!r}")
        with session.cursor() as cursor:
            cursor.execute("SELECT array_agg(email ORDER BY id) FROM accounts")
            emails = cursor.fetchone()[0]
        session.rollback()
        results.check("after the reset the idle session is still connected and sees the "
                      "template's rows only", emails == ["first@example.com"], f"{emails!r}")
    finally:
        session.close()
    w.call("POST reset {} -> 200 ResetLease", "POST", path, {}, status=200, request_valid=True)
    w.call("POST reset (unknown field) -> 400 invalid_argument", "POST", path, {"mode": "x"},
           status=400, code="invalid_argument", names="mode", request_valid=False)
    w.call("POST reset (malformed JSON) -> 400 invalid_json", "POST", path, b'{"x": ',
           status=400, code="invalid_json")
    w.call("POST reset?bogus=1 -> 400 invalid_argument", "POST", f"{path}?bogus=1", status=400,
           code="invalid_argument", names="bogus")


def w_auth(w):
    return {"Authorization": f"Bearer {w.token}"} if w.token else {}


def walk_client_templates(w, results):
    name, fp = "conf_client", "fp-1.0"
    response = w.call("PUT /v1/templates/{new name} -> 201 build", "PUT", f"/v1/templates/{name}",
                      {"fingerprint": fp, "wait_seconds": 5, "build_ttl_seconds": 120},
                      status=201, request_valid=True)
    built = response.json() if response and response.status == 201 else None
    if built is None:
        results.check("client build started; the client walk needs it", False, "no build")
        return
    build = built["build"]
    results.record("201 build: build names the template and fingerprint; the template is a client one", [
        None if build["template"] == name else f"build.template {build['template']!r}",
        None if build["fingerprint"] == fp else f"build.fingerprint {build['fingerprint']!r}",
        None if built["template"]["name"] == name else f"template.name {built['template']['name']!r}",
        None if built["template"]["source"] == "client" else (
            f"template.source {built['template']['source']!r}"),
        None if 110 <= seconds_until(build["expires_at"]) <= 121 else (
            f"build.expires_at is {seconds_until(build['expires_at']):.0f} s away, not 120"),
        *dsn_problems(build),
    ])
    response = w.call("GET /v1/templates/{client template} -> 200", "GET", f"/v1/templates/{name}",
                      status=200)
    body = response.json() if response else None
    results.check("a client template being built has source client", isinstance(body, dict) and
                  body.get("source") == "client", f"{body!r}")

    finalize = f"/v1/templates/{name}/builds/{fp}/finalize"
    w.call("POST finalize (unknown build id) -> 404 unknown_build", "POST", finalize,
           {"build_id": ZERO_ID}, status=404, code="unknown_build", request_valid=True)
    w.call("POST finalize (build id under another fingerprint) -> 404 unknown_build", "POST",
           f"/v1/templates/{name}/builds/fp-9/finalize", {"build_id": build["id"]}, status=404,
           code="unknown_build", request_valid=True)
    w.call("POST finalize on an unknown template -> 404 unknown_build", "POST",
           "/v1/templates/conf_nosuch/builds/fp-1.0/finalize", {"build_id": ZERO_ID}, status=404,
           code="unknown_build", request_valid=True)
    w.call("POST finalize {} -> 400 invalid_argument", "POST", finalize, {}, status=400,
           code="invalid_argument", names="build_id", request_valid=False)
    w.call("POST finalize (no body) -> 400", "POST", finalize, status=400,
           code="invalid_argument", names="build_id")
    w.call("POST finalize (build_id a number) -> 400 invalid_argument", "POST", finalize,
           {"build_id": 7}, status=400, code="invalid_argument", names="build_id",
           request_valid=False)
    w.call("POST finalize (unknown field) -> 400 invalid_argument", "POST", finalize,
           {"build_id": build["id"], "force": True}, status=400, code="invalid_argument",
           names="force", request_valid=False)
    w.call("POST finalize (malformed JSON) -> 400 invalid_json", "POST", finalize, b"{build_id}",
           status=400, code="invalid_json")
    response = w.call("POST finalize -> 200 Template", "POST", finalize, {"build_id": build["id"]},
                      status=200, request_valid=True)
    body = response.json() if response else None
    version = body.get("fingerprint") if isinstance(body, dict) else None
    results.check("finalize: the template is ready with a version fingerprint, source client",
                  isinstance(body, dict) and body.get("state") == "ready" and version and
                  body.get("source") == "client", f"{body!r}")
    w.call("POST finalize again -> 404 unknown_build", "POST", finalize, {"build_id": build["id"]},
           status=404, code="unknown_build", request_valid=True)

    response = w.call("PUT /v1/templates/{name} again -> 200 ready", "PUT", f"/v1/templates/{name}",
                      {"fingerprint": fp}, status=200, request_valid=True)
    body = response.json() if response else None
    results.check("200 ready: the template is ready at the version finalize made",
                  isinstance(body, dict) and body.get("state") == "ready" and
                  body.get("template", {}).get("fingerprint") == version and
                  body.get("template", {}).get("state") == "ready", f"{body!r}")

    response = w.call("POST acquire on the client template -> 201 Lease", "POST",
                      f"/v1/templates/{name}/leases", {"wait_seconds": 60}, status=201,
                      request_valid=True)
    lease = response.json() if response and response.status == 201 else None
    if lease is not None:
        results.check("a client template's lease carries the version's fingerprint",
                      lease["fingerprint"] == version and lease["template"] == name,
                      f"fingerprint {lease['fingerprint']!r}, template {lease['template']!r}")
        w.call("DELETE the client template's lease -> 204", "DELETE",
               f"/v1/leases/{lease['id']}", status=204)

    response = w.call("PUT another fingerprint -> 201 build", "PUT", f"/v1/templates/{name}",
                      {"fingerprint": "fp-2.0"}, status=201, request_valid=True)
    second = response.json() if response and response.status == 201 else None
    if second is not None:
        abort = f"/v1/templates/{name}/builds/fp-2.0/abort"
        w.call("POST abort (unknown build id) -> 404 unknown_build", "POST", abort,
               {"build_id": ZERO_ID}, status=404, code="unknown_build", request_valid=True)
        w.call("POST abort {} -> 400 invalid_argument", "POST", abort, {}, status=400,
               code="invalid_argument", names="build_id", request_valid=False)
        w.call("POST abort (a JSON array) -> 400 invalid_json", "POST", abort, b"[]", status=400,
               code="invalid_json")
        w.call("POST abort -> 204", "POST", abort, {"build_id": second["build"]["id"]},
               status=204, request_valid=True)
        w.call("POST abort again -> 404 unknown_build", "POST", abort,
               {"build_id": second["build"]["id"]}, status=404, code="unknown_build",
               request_valid=True)
        w.call("POST finalize an aborted build -> 404 unknown_build", "POST",
               f"/v1/templates/{name}/builds/fp-2.0/finalize",
               {"build_id": second["build"]["id"]}, status=404, code="unknown_build",
               request_valid=True)

    busy = "conf_busy"
    response = w.call("PUT {name} (first caller) -> 201 build", "PUT", f"/v1/templates/{busy}",
                      {"fingerprint": "fp_busy", "wait_seconds": 0}, status=201,
                      request_valid=True)
    first = response.json() if response and response.status == 201 else None
    w.call("PUT {name} {wait_seconds: 0} while another caller builds -> 503 template_building",
           "PUT", f"/v1/templates/{busy}", {"fingerprint": "fp_busy", "wait_seconds": 0},
           status=503, code="template_building", request_valid=True)
    started = time.monotonic()
    w.call("PUT {name} {wait_seconds: 1} while another caller builds -> 503 template_building",
           "PUT", f"/v1/templates/{busy}", {"fingerprint": "fp_busy", "wait_seconds": 1},
           status=503, code="template_building", request_valid=True)
    waited = time.monotonic() - started
    results.check("PUT with wait_seconds 1 waits about 1 s before 503", 0.8 <= waited <= 5,
                  f"answered after {waited:.2f} s")
    w.call("POST acquire {wait_seconds: 0} on a template with no ready version -> 503 template_building",
           "POST", f"/v1/templates/{busy}/leases", {"wait_seconds": 0}, status=503,
           code="template_building", request_valid=True)
    if first is not None:
        w.call("POST abort the first caller's build -> 204", "POST",
               f"/v1/templates/{busy}/builds/fp_busy/abort", {"build_id": first["build"]["id"]},
               status=204, request_valid=True)

    w.call("PUT /v1/templates/app (a configured template) -> 409 conflict", "PUT",
           "/v1/templates/app", {"fingerprint": "fp-1.0"}, status=409, code="conflict",
           request_valid=True)
    w.call("PUT /v1/templates/Bad-Name -> 400 invalid_argument", "PUT", "/v1/templates/Bad-Name",
           {"fingerprint": "fp-1.0"}, status=400, code="invalid_argument")
    w.call("PUT a 28-character name -> 400 invalid_argument", "PUT", "/v1/templates/" + "n" * 28,
           {"fingerprint": "fp-1.0"}, status=400, code="invalid_argument")
    target = "/v1/templates/conf_bad"
    for label, body, names in [
        ("{} (no fingerprint)", {}, "fingerprint"),
        ("fingerprint with a space", {"fingerprint": "a b"}, "fingerprint"),
        ("fingerprint of 129 characters", {"fingerprint": "f" * 129}, "fingerprint"),
        ("fingerprint empty", {"fingerprint": ""}, "fingerprint"),
        ("fingerprint a number", {"fingerprint": 12}, "fingerprint"),
        ("wait_seconds 601", {"fingerprint": "x", "wait_seconds": 601}, "wait_seconds"),
        ("wait_seconds -1", {"fingerprint": "x", "wait_seconds": -1}, "wait_seconds"),
        ("build_ttl_seconds 0", {"fingerprint": "x", "build_ttl_seconds": 0}, "build_ttl_seconds"),
        ("build_ttl_seconds 3601", {"fingerprint": "x", "build_ttl_seconds": 3601},
         "build_ttl_seconds"),
        ("unknown field", {"fingerprint": "x", "ttl_seconds": 5}, "ttl_seconds"),
    ]:
        w.call(f"PUT ({label}) -> 400 invalid_argument", "PUT", target, body, status=400,
               code="invalid_argument", names=names, request_valid=False)
    w.call("PUT (no body) -> 400", "PUT", target, status=400, code="invalid_argument",
           names="fingerprint")
    w.call("PUT (malformed JSON) -> 400 invalid_json", "PUT", target, b'{"fingerprint": x}',
           status=400, code="invalid_json")


def walk_protocol(w, results, contract):
    for method, path, allowed in [
        ("DELETE", "/v1/templates", "GET"),
        ("POST", "/v1/templates/app", "GET, PUT"),
        ("GET", "/v1/templates/app/leases", "POST"),
        ("GET", "/v1/templates/app/builds/fp-1.0/finalize", "POST"),
        ("PUT", "/v1/templates/app/builds/fp-1.0/abort", "POST"),
        ("POST", "/v1/leases", "GET"),
        ("PATCH", f"/v1/leases/{ZERO_ID}", "DELETE, GET"),
        ("GET", f"/v1/leases/{ZERO_ID}/renew", "POST"),
        ("DELETE", f"/v1/leases/{ZERO_ID}/reset", "POST"),
        ("POST", "/healthz", "GET"),
        ("DELETE", "/readyz", "GET"),
    ]:
        response = w.call(f"{method} {path} -> 405 method_not_allowed", method, path, status=405,
                          code="method_not_allowed")
        _, item = contract.path_item(path)
        documented = contract.documented_methods(item)
        got = {m.strip() for m in (response.header("Allow") or "").split(",") if m.strip()} if (
            response) else set()
        results.record(f"{method} {path}: Allow lists the documented methods ({allowed})", [
            None if got == documented else (
                f"Allow {response.header('Allow') if response else None!r}"),
            None if documented == set(allowed.split(", ")) else (
                f"the document has {sorted(documented)} on this path")])
    for path in ("/v1/nope", "/nope", "/v1/templates/app/builds", "/v1/leases/x/y/z", "/"):
        w.call(f"GET {path} -> 404 not_found", "GET", path, status=404, code="not_found")

    big = b'{"owner": "' + b"x" * (70 * 1024) + b'"}'
    w.call("POST acquire with a 70 KiB body -> 413 body_too_large", "POST",
           "/v1/templates/app/leases", big, status=413, code="body_too_large")
    w.call("PUT /v1/templates/{name} with a 70 KiB body -> 413 body_too_large", "PUT",
           "/v1/templates/conf_big", b'{"fingerprint": "' + b"x" * (70 * 1024) + b'"}',
           status=413, code="body_too_large")
    w.call("GET /healthz with 9 KiB of headers -> 431 headers_too_large", "GET", "/healthz",
           headers={"X-Padding": "p" * (9 * 1024)}, status=431, code="headers_too_large")

    try:
        response, _ = raw_exchange(w.port, b"GARBAGE\x01 nonsense\r\n\r\n")
        problems = [] if response.status == 400 else [f"status {response.status}"]
        if response.error_code() != "bad_request":
            problems.append(f"code {response.error_code()!r}")
        problems += [f"body {e}" for e in contract.validators.errors(
            "/components/responses/TransportError/content/application~1json/schema",
            response.json())]
        results.record("unparseable HTTP -> 400 bad_request", problems)
    except (OSError, http.client.HTTPException) as error:
        results.check("unparseable HTTP -> 400 bad_request", False, repr(error))

    started = time.monotonic()
    try:
        response, closed = raw_exchange(
            w.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", timeout=30)
        elapsed = time.monotonic() - started
        problems = [] if response.status == 408 else [f"status {response.status}"]
        if response.error_code() != "request_timeout":
            problems.append(f"code {response.error_code()!r}")
        if not 9 <= elapsed <= 15:
            problems.append(f"answered after {elapsed:.1f} s, not 10")
        if not closed:
            problems.append("the connection stays open")
        problems += [f"body {e}" for e in contract.validators.errors(
            "/components/responses/TransportError/content/application~1json/schema",
            response.json())]
        results.record("headers that stop arriving -> 408 request_timeout after 10 s, closed",
                       problems)
    except (OSError, http.client.HTTPException) as error:
        results.check("headers that stop arriving -> 408 request_timeout after 10 s, closed",
                      False, f"{error!r} after {time.monotonic() - started:.1f} s")

    try:
        conn = http.client.HTTPConnection("127.0.0.1", w.port, timeout=10)
        first = http_request(w.port, "GET", "/healthz", conn=conn)
        sock = conn.sock
        second = http_request(w.port, "GET", "/v1/templates", headers=w_auth(w), conn=conn)
        reused = conn.sock is sock and sock is not None
        conn.close()
        results.check("keep-alive: two requests on one connection",
                      first.status == 200 and second.status == 200 and reused,
                      f"statuses {first.status}, {second.status}; connection reused: {reused}")
    except (OSError, http.client.HTTPException) as error:
        results.check("keep-alive: two requests on one connection", False, repr(error))


def walk_auth(results, contract, port):
    plain = Walk(results, contract, port, "token: ")
    plain.call("GET /v1/templates without a token -> 401 unauthorized", "GET", "/v1/templates",
               status=401, code="unauthorized")
    plain.call("GET /v1/templates with a wrong token -> 401 unauthorized", "GET", "/v1/templates",
               headers={"Authorization": "Bearer wrong"}, status=401, code="unauthorized")
    plain.call("GET /v1/templates with a token one character short -> 401", "GET",
               "/v1/templates", headers={"Authorization": f"Bearer {TOKEN[:-1]}"}, status=401,
               code="unauthorized")
    plain.call("GET /v1/templates with Basic credentials -> 401 unauthorized", "GET",
               "/v1/templates", headers={"Authorization": "Basic c2VjcmV0OnNlY3JldA=="},
               status=401, code="unauthorized")
    plain.call("POST /v1/templates/app/leases without a token -> 401 unauthorized", "POST",
               "/v1/templates/app/leases", {}, status=401, code="unauthorized")
    plain.call("GET /v1/leases/{id} without a token -> 401 unauthorized", "GET",
               f"/v1/leases/{ZERO_ID}", status=401, code="unauthorized")
    plain.call("PUT /v1/templates/{name} without a token -> 401 unauthorized", "PUT",
               "/v1/templates/conf_auth", {"fingerprint": "x"}, status=401, code="unauthorized")
    plain.call("DELETE /v1/leases/{id} without a token -> 401 unauthorized", "DELETE",
               f"/v1/leases/{ZERO_ID}", status=401, code="unauthorized")
    authed = Walk(results, contract, port, "token: ", token=TOKEN)
    authed.call("GET /v1/templates with the token -> 200", "GET", "/v1/templates", status=200)
    authed.call("GET /v1/leases with the token -> 200", "GET", "/v1/leases", status=200)
    authed.call("GET /v1/leases/<unknown id> with the token -> 404 unknown_lease", "GET",
                f"/v1/leases/{ZERO_ID}", status=404, code="unknown_lease")
    plain.call("GET /healthz without a token -> 200", "GET", "/healthz", status=200)

    deadline = time.monotonic() + 60
    broken = None
    while time.monotonic() < deadline:
        response = http_request(port, "GET", "/v1/templates/broken",
                                headers={"Authorization": f"Bearer {TOKEN}"})
        broken = response.json()
        if response.status != 200 or (broken or {}).get("state") == "failed":
            break
        time.sleep(0.2)
    results.check("token: a template whose migration fails becomes failed, its error naming "
                  "the file", isinstance(broken, dict) and broken.get("state") == "failed" and
                  "001_broken.sql" in broken.get("error", ""), f"{broken!r}")
    authed.call("GET /v1/templates/{failed template} -> 200", "GET", "/v1/templates/broken",
                status=200)
    authed.call("POST acquire {wait_seconds: 0} on a failed template -> 503 template_failed",
                "POST", "/v1/templates/broken/leases", {"wait_seconds": 0}, status=503,
                code="template_failed", request_valid=True)
    plain.call("GET /readyz without a token, a template failed -> 503 not_ready", "GET",
               "/readyz", status=503, code="not_ready")
    response = http_request(port, "GET", "/metrics")
    if response.status == 404 and response.error_code() == "not_found":
        results.skip("token: GET /metrics without a token -> 200",
                     "the daemon has no /metrics yet")
    else:
        results.record("token: GET /metrics without a token -> 200", [
            None if response.status == 200 else f"status {response.status}",
            *contract.conformance("GET", "/metrics", response)])


# ---------------------------------------------------------------- main


def write_config(workdir):
    migrations = workdir / "migrations"
    migrations.mkdir()
    (migrations / "001_accounts.sql").write_text(
        "CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);\n")
    (migrations / "002_seed.sql").write_text(
        "INSERT INTO accounts (email) VALUES ('first@example.com');\n")
    config = {
        "defaults": {
            "pool": {"min_idle": 1, "max_total": 2},
            "lease": {"ttl_seconds": 60, "max_ttl_seconds": 120, "keep_seconds": 30,
                      "max_keep_seconds": 60, "wait_seconds": 10, "max_wait_seconds": 60},
        },
        "templates": {
            "app": {
                "migrations": str(migrations),
                "pool": {"min_idle": 1, "max_total": 2},
                "lease": {"ttl_seconds": 60, "max_ttl_seconds": 120, "keep_seconds": 30,
                          "max_keep_seconds": 60, "wait_seconds": 10, "max_wait_seconds": 60},
            },
        },
    }
    path = workdir / "pglease.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def write_failing_config(workdir):
    """A config whose only template never builds: its daemon serves, but is never ready."""
    broken = workdir / "broken-migrations"
    broken.mkdir()
    (broken / "001_broken.sql").write_text("CREATE TABLE (;\n")
    config = {"templates": {"broken": {"migrations": str(broken),
                                       "pool": {"min_idle": 1, "max_total": 1}}}}
    path = workdir / "failing.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def main(argv):
    if len(argv) != 2:
        print("usage: openapi_conformance.py PATH/TO/pgleased", file=sys.stderr)
        return 2
    binary = Path(argv[1]).resolve()
    results = Results()
    doc = check_document(results)
    if doc is None:
        print("the document is invalid: the daemon is not checked", flush=True)
        return results.finish()
    contract = Contract(doc)
    if not os.access(binary, os.X_OK):
        results.check(f"{binary} is an executable", False, "missing or not executable")
        return results.finish()

    workdir = Path(tempfile.mkdtemp(prefix="pglease-openapi-"))
    os.chmod(workdir, 0o755)
    daemons = []
    try:
        config = write_config(workdir)
        main_daemon = Daemon(binary, "main", workdir / "main.log", workdir / "data", config=config)
        daemons.append(main_daemon)
        auth_daemon = Daemon(binary, "token", workdir / "token.log", workdir / "token-data",
                             config=write_failing_config(workdir), env={"PGLEASE_TOKEN": TOKEN})
        daemons.append(auth_daemon)
        if start_and_wait_ready(results, main_daemon, contract):
            w = Walk(results, contract, main_daemon.port)
            walk_health(w, results, contract)
            wait_template_ready(results, main_daemon.port, "app")
            walk_templates(w, results)
            walk_leases(w, results)
            walk_client_templates(w, results)
            walk_protocol(w, results, contract)
        if start_and_wait_ready(results, auth_daemon, contract, probe="/healthz"):
            walk_auth(results, contract, auth_daemon.port)
    finally:
        for daemon in daemons:
            status = daemon.stop()
            results.check(f"{daemon.name} daemon: exits 0 on SIGTERM", status == 0,
                          f"exit status {status}; log:\n    {daemon.log_tail()}")
        status = results.finish(workdir)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
