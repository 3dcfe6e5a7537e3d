"""`rabbitmqadmin` against the definitions and policies endpoints: export, import, and policies
declared, listed and deleted."""

from __future__ import annotations

import json

from .test_rabbitmqadmin import admin  # noqa: F401 (the fixture)


def test_export_and_import(admin, unique, cleanup, tmp_path) -> None:  # noqa: F811
    queue = cleanup.queue(unique("imported"))
    item = {"name": queue, "vhost": "/", "durable": True, "auto_delete": False, "arguments": {"x-max-length": 3}}
    source = tmp_path / "import.json"
    source.write_text(json.dumps({"queues": [item]}))
    assert "Uploaded definitions" in admin("import", str(source))
    exported = tmp_path / "export.json"
    assert "Exported definitions" in admin("export", str(exported))
    document = json.loads(exported.read_text())
    assert item in document["queues"]
    assert {"users", "vhosts", "permissions", "policies", "exchanges", "bindings"} <= set(document)
    assert "Exported definitions" in admin("-V", "/", "export", str(exported))
    del item["vhost"]
    assert item in json.loads(exported.read_text())["queues"]


def test_declare_list_delete_policy(admin, unique) -> None:  # noqa: F811
    name = unique("policy")
    declared = admin("declare", "policy", f"name={name}", "pattern=^nothing-matches-this$",
                     'definition={"max-length": 3}', "priority=2", "apply-to=queues")
    try:
        assert "policy declared" in declared
        listed = [p for p in json.loads(admin("-f", "raw_json", "list", "policies")) if p["name"] == name]
        assert listed == [{"vhost": "/", "name": name, "pattern": "^nothing-matches-this$", "apply-to": "queues",
                           "definition": {"max-length": 3}, "priority": 2}]
    finally:
        assert "policy deleted" in admin("delete", "policy", f"name={name}")
