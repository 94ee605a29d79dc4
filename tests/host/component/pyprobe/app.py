"""A Python component for the host's tests: each operation exercises one thing the host gives components.

Payloads and answers are UTF-8 text; an ``err`` is raised as ``Err``. Built with componentize-py against
``world.wit`` (tests/host/component/test_python.py builds it, cached).
"""

import os
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import atomics, host, logging, runtime, store


def _kv_error(exc: Err) -> str:  # wasi:keyvalue's error variant, as text
    value = exc.value
    return f"{type(value).__name__}:{getattr(value, 'value', '')}"


def _op(operation: str, text: str) -> str:
    if operation == "Kv.Set":
        key, value = text.split("=", 1)
        store.open("").set(key, value.encode())
        return "ok"
    if operation == "Kv.Get":
        found = store.open("").get(text)
        return "<none>" if found is None else found.decode()
    if operation == "Kv.Exists":
        return str(store.open("").exists(text))
    if operation == "Kv.Delete":
        store.open("").delete(text)
        return "deleted"
    if operation == "Kv.Increment":
        key, delta = text.split("+", 1)
        return str(atomics.increment(store.open(""), key, int(delta)))
    if operation == "Kv.SetBinary":  # not UTF-8: the contract holds strings
        store.open("").set(text, b"\xff\xfe")
        return "unreachable"
    if operation == "Kv.List":
        return ",".join(store.open("").list_keys(None).keys)
    if operation == "Kv.Other":  # a bucket named after a link that does not exist
        store.open(text).get("k")
        return "unreachable"
    if operation == "Config.Get":
        value = runtime.get(text)
        return "<none>" if value is None else value
    if operation == "Config.All":
        return ",".join(f"{k}={v}" for k, v in runtime.get_all())
    if operation == "Log":
        logging.log(logging.Level.WARN, "probe", text)
        print("to stdout:", text)
        print("to stderr:", text, file=sys.stderr)
        return "logged"
    if operation == "Env":
        return os.environ.get(text, "<unset>")
    if operation == "Files":
        try:
            return ",".join(sorted(os.listdir(text)))
        except OSError as exc:
            return f"OSError:{exc.errno}"
    if operation == "Call":
        namespace, op, data = text.split("|", 2)
        return host.call("", namespace, op, data.encode()).decode()
    if operation == "Raise":
        raise RuntimeError("uncaught on purpose")
    if operation == "Loop":
        while True:
            pass
    if operation == "Hog":
        hog = []
        while True:
            hog.append(bytearray(1 << 20))
    raise Err(f"unknown operation {operation}")


class Guest(exports.Guest):
    def handle(self, operation: str, payload: bytes) -> bytes:
        try:
            return _op(operation, payload.decode()).encode()
        except Err as exc:
            if operation.startswith("Kv."):
                raise Err(_kv_error(exc)) from None
            raise
