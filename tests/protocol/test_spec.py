"""spec/amqp0-9-1.json against the official XML, and the generated module against the generator."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from amqpbroker.protocol import ReplyCode, spec

ROOT = Path(__file__).resolve().parents[2]
XML = Path("/usr/share/amqp/specs/0-9-1-rabbit/amqp0-9-1.stripped.extended.xml")


def _load_generator():
    module_spec = importlib.util.spec_from_file_location("gen_spec", ROOT / "tools" / "gen_spec.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


gen_spec = _load_generator()
OURS = gen_spec.load_spec()


def test_generated_module_is_up_to_date():
    committed = (ROOT / "amqpbroker" / "protocol" / "_spec.py").read_text()
    assert committed == gen_spec.render(), "run: python tools/gen_spec.py"


@pytest.fixture(scope="module")
def xml_root():
    if not XML.exists():
        pytest.skip(f"{XML} is absent (Debian package amqp-specs is not installed)")
    return ET.parse(XML).getroot()


def _xml_field(f, domains):
    out = {"name": f.get("name"), "type": domains[f.get("domain")] if f.get("domain") else f.get("type")}
    if f.get("reserved"):
        out["reserved"] = True
    return out


def _our_field(f):
    out = {"name": f.get("xml_name", f["name"]), "type": f["type"]}
    if f.get("reserved"):
        out["reserved"] = True
    return out


def test_constants_and_reply_codes_match_xml(xml_root):
    ours = {c["name"]: c["value"] for c in OURS["constants"]}
    ours.update({c["name"]: c["value"] for c in OURS["reply_codes"] if c.get("extension") != "rabbitmq"})
    theirs = {c.get("name"): int(c.get("value")) for c in xml_root.findall("constant")}
    assert ours == theirs
    classes = {c["name"]: c["class"] for c in OURS["reply_codes"]}
    for c in xml_root.findall("constant"):
        if c.get("class"):
            assert classes[c.get("name")] == c.get("class").removesuffix("-error")


def test_domains_match_xml(xml_root):
    assert OURS["domains"] == {d.get("name"): d.get("type") for d in xml_root.findall("domain")}


def test_classes_methods_and_fields_match_xml(xml_root):
    domains = {d.get("name"): d.get("type") for d in xml_root.findall("domain")}
    xml_classes = xml_root.findall("class")
    ours = {c["name"]: c for c in OURS["classes"]}
    assert sorted(ours) == sorted(c.get("name") for c in xml_classes)
    total = 0
    for xc in xml_classes:
        oc = ours[xc.get("name")]
        assert oc["id"] == int(xc.get("index"))
        assert [_our_field(f) for f in oc.get("properties", [])] == [_xml_field(f, domains) for f in xc.findall("field")]
        our_methods = [m for m in oc["methods"] if m.get("extension") != "rabbitmq"]
        assert [m["name"] for m in our_methods] == [m.get("name") for m in xc.findall("method")]
        for om, xm in zip(our_methods, xc.findall("method")):
            total += 1
            assert om["id"] == int(xm.get("index")), om["name"]
            assert om["synchronous"] == (xm.get("synchronous") == "1"), om["name"]
            assert om["content"] == (xm.get("content") == "1"), om["name"]
            assert om["responses"] == [r.get("name") for r in xm.findall("response")], om["name"]
            assert [_our_field(f) for f in om["fields"]] == [_xml_field(f, domains) for f in xm.findall("field")]
    assert total == 60


def test_overlay_has_rabbitmq_extensions():
    connection = {m["id"]: m for m in OURS["classes"][0]["methods"]}
    assert connection[60]["name"] == "blocked" and connection[60]["fields"][0]["name"] == "reason"
    assert connection[61]["name"] == "unblocked"
    assert [f["name"] for f in connection[70]["fields"]] == ["new-secret", "reason"]
    assert connection[71]["name"] == "update-secret-ok"
    assert ReplyCode.NO_ROUTE == 312 and not ReplyCode.NO_ROUTE.is_hard


def test_generated_names_and_attributes():
    assert spec.BasicPublish.NAME == "basic.publish"
    assert (spec.BasicPublish.CLASS_ID, spec.BasicPublish.METHOD_ID) == (60, 40)
    assert spec.BasicPublish.HAS_CONTENT and not spec.BasicPublish.SYNCHRONOUS
    assert spec.QueueDeclare.RESPONSES == ("queue.declare-ok",)
    assert spec.BasicGet.RESPONSES == ("basic.get-ok", "basic.get-empty")
    assert spec.METHODS[60, 120] is spec.BasicNack
    assert spec.METHODS[85, 10] is spec.ConfirmSelect
    assert spec.METHODS[10, 60] is spec.ConnectionBlocked
    assert len(spec.METHODS) == 64
    m = spec.BasicPublish(exchange="x", routing_key="k")
    assert (m.exchange, m.routing_key, m.mandatory, m.immediate) == ("x", "k", False, False)
    assert spec.QueueDeclare().arguments == {}
    assert spec.QueueDeclare().arguments is not spec.QueueDeclare().arguments
    assert not hasattr(spec.QueueDeclare(), "ticket") and not hasattr(spec.QueueDeclare(), "reserved_1")
    assert spec.ConnectionClose.__slots__ == ("reply_code", "reply_text", "class_id", "method_id")
    assert spec.FRAME_END == 206 and spec.FRAME_MIN_SIZE == 4096 and spec.FRAME_HEARTBEAT == 8


def test_reply_code_classes():
    assert ReplyCode.FRAME_ERROR.is_hard and ReplyCode.NOT_ALLOWED.is_hard and ReplyCode.CONNECTION_FORCED.is_hard
    for soft in (311, 312, 313, 403, 404, 405, 406, 200):
        assert not ReplyCode(soft).is_hard
