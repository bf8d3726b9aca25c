"""The binding follows the headers: every function the public headers
export is declared in python/shmbus/_lib.py, and the structures it mirrors
have the headers' fields, in order. A function added to shmbus.h without
the binding fails here."""

from __future__ import annotations

import re

import shmbus
from conftest import ROOT

HEADERS = [ROOT / "include" / "shmbus" / "shmbus.h", ROOT / "include" / "shmbus" / "map.h"]


def exported_functions():
    names = set()
    for h in HEADERS:
        text = h.read_text()
        names |= set(re.findall(r"SHMBUS_API\s+[^;(]*?\b(shmbus_\w+)\s*\(", text))
    return names


def struct_fields(name):
    text = HEADERS[0].read_text()
    body = re.search(r"struct %s \{(.*?)\n\};" % name, text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return re.findall(r"\b(\w+);", body)


def test_every_exported_function_is_declared():
    exported = exported_functions()
    assert len(exported) >= 40  # the parse found them
    declared = set(shmbus._lib._PROTOTYPES)
    assert exported - declared == set(), "declare these in python/shmbus/_lib.py"
    assert declared - exported == set(), "no longer in the headers"


def test_every_declared_function_is_in_the_library():
    lib = shmbus._lib.load()
    for name in shmbus._lib._PROTOTYPES:
        assert hasattr(lib, name), name


def test_the_structures_match():
    assert [f[0] for f in shmbus._lib.TopicConfig._fields_] == struct_fields("shmbus_topic_config")
    assert [f[0] for f in shmbus._lib.MsgInfo._fields_] == struct_fields("shmbus_msg_info")
    assert [f[0] for f in shmbus._lib.ReqRef._fields_] == struct_fields("shmbus_reqref")


def test_the_constants_match():
    text = HEADERS[0].read_text() + HEADERS[1].read_text()

    def const(name):
        return int(re.search(r"#define %s\s+(\w+)" % name, text).group(1).rstrip("u"), 0)

    assert const("SHMBUS_BROADCAST") == shmbus.Mode.BROADCAST
    assert const("SHMBUS_QUEUE") == shmbus.Mode.QUEUE
    assert const("SHMBUS_BLOCK") == shmbus.Overflow.BLOCK
    assert const("SHMBUS_OVERWRITE") == shmbus.Overflow.OVERWRITE
    assert const("SHMBUS_REJECT") == shmbus.Overflow.REJECT
    assert const("SHMBUS_START_LATEST") == shmbus.Start.LATEST
    assert const("SHMBUS_START_EARLIEST") == shmbus.Start.EARLIEST
    assert const("SHMBUS_TOPIC_MAX") == shmbus.TOPIC_MAX
    assert const("SHMBUS_SERVICE_MAX") == shmbus.SERVICE_MAX
    assert const("SHMBUS_MSG_METADATA") == shmbus.MSG_METADATA
    assert const("SHMBUS_MAP_NAME_MAX") == shmbus.NAME_MAX
    assert const("SHMBUS_ACCESS_READ") == shmbus.Access.READ
    assert const("SHMBUS_ACCESS_WRITE") == shmbus.Access.WRITE
    assert const("SHMBUS_ACCESS_COPY") == shmbus.Access.COPY
    from shmbus import mapping

    assert const("SHMBUS_MAP_CREATE") == mapping._CREATE
    assert const("SHMBUS_MAP_EXCL") == mapping._EXCL
    assert const("SHMBUS_MAP_TRUNCATE") == mapping._TRUNCATE
    assert const("SHMBUS_VIEW_SEQUENTIAL") == mapping._HINTS["sequential"]
    assert const("SHMBUS_VIEW_RANDOM") == mapping._HINTS["random"]
    for kind in shmbus.WatchKind:
        assert re.search(r"SHMBUS_WATCH_%s = %d\b" % (kind.name, kind.value), text), kind
