"""Users, vhosts and permissions exported and imported in RabbitMQ's definitions format."""

from __future__ import annotations

import pytest

from amqpbroker import core
from amqpbroker.core.access_definitions import InvalidDefinitions, export_access, import_access
from amqpbroker.core.users import hash_password

# Exported by RabbitMQ 3.10.8 (GET /api/definitions), trimmed to these three keys.
RABBITMQ_EXPORT = {
    "rabbit_version": "3.10.8",
    "users": [
        {
            "name": "pp-user",
            "password_hash": "I7x4HX53bOytFHhRFWxZxY7RAZyYyjjdK1cB7qGnNmW5iAo3",
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": ["management"],
            "limits": {},
        },
    ],
    "vhosts": [{"name": "pp-probe"}, {"name": "/"}],
    "permissions": [
        {"user": "pp-user", "vhost": "pp-probe", "configure": "^(c|cw|cr|cwr)-", "write": "^(w|cw|wr|cwr)-",
         "read": "^(r|cr|wr|cwr)-"},
    ],
}


def test_a_rabbitmq_export_imports_logs_in_and_exports_back_the_same():
    broker = core.Broker()
    import_access(broker, RABBITMQ_EXPORT)
    assert broker.authenticate("pp-user", "s3cret")
    assert broker.can_open_vhost("pp-user", "pp-probe")
    assert not broker.can_open_vhost("guest", "pp-probe")  # no acting user: nobody else gets permissions
    exported = export_access(broker)
    for key in ("users", "vhosts", "permissions"):
        for item in RABBITMQ_EXPORT[key]:
            assert item in exported[key]
    guest = next(user for user in exported["users"] if user["name"] == "guest")
    assert guest["tags"] == ["administrator"] and guest["hashing_algorithm"] == "rabbit_password_hashing_sha256"


def test_plain_passwords_comma_tags_and_old_md5_files():
    broker = core.Broker()
    import_access(broker, {"users": [{"name": "a", "password": "pw", "tags": "management, monitoring"},
                                     {"name": "nopass", "tags": []}]})
    assert broker.users.get("nopass").password_hash == ""
    a = broker.users.get("a")
    assert a.tags == ["management", "monitoring"] and broker.authenticate("a", "pw")
    md5_hash = hash_password("pw", "rabbit_password_hashing_md5")
    import_access(broker, {"rabbit_version": "3.5.7", "users": [{"name": "m", "password_hash": md5_hash, "tags": ""}]})
    assert broker.users.get("m").hashing_algorithm == "rabbit_password_hashing_md5"
    assert broker.authenticate("m", "pw")


def test_a_new_vhost_gives_the_importing_user_every_permission():
    broker = core.Broker()
    import_access(broker, {"vhosts": [{"name": "v", "description": "imported"}]}, acting_user="guest")
    assert broker.permissions.get("v", "guest") == core.Permission("v", "guest", ".*", ".*", ".*")
    assert broker.vhosts["v"].description == "imported"


@pytest.mark.parametrize(
    ("definitions", "reason"),
    [
        ({"permissions": [{"user": "nobody", "vhost": "/", "configure": "", "write": "", "read": ""}]},
         "no_such_user: 'nobody'"),
        ({"permissions": [{"user": "guest", "vhost": "none", "configure": "", "write": "", "read": ""}]},
         "no_such_vhost: 'none'"),
        ({"permissions": [{"user": "guest", "vhost": "/", "configure": "(", "write": "", "read": ""}]},
         "invalid_regexp: '('"),
        ({"topic_permissions": [{"user": "nobody", "vhost": "/", "exchange": "t", "write": "", "read": ""}]},
         "no_such_user: 'nobody'"),
        ({"topic_permissions": [{"user": "guest", "vhost": "none", "exchange": "t", "write": "", "read": ""}]},
         "no_such_vhost: 'none'"),
        ({"topic_permissions": [{"user": "guest", "vhost": "/", "exchange": "t", "write": "", "read": "("}]},
         "invalid_regexp: '('"),
        ({"topic_permissions": [{"user": "guest", "vhost": "/", "exchange": "t", "write": ""}]},
         "'read' is missing"),
        ({"users": [{"name": "u", "password": "p"}]}, "tags_not_present"),
        ({"users": [{"name": "u", "password": "p", "password_hash": "", "tags": ""}]},
         "both_password_and_password_hash_are_provided"),
        ({"users": [{"name": "u", "password_hash": "abc", "tags": ""}]}, "not_base64: 'abc'"),
        ({"users": [{"name": "u", "password_hash": "", "hashing_algorithm": "rot13", "tags": ""}]},
         "unknown hashing_algorithm"),
        ({"users": [{"name": "u", "password": "p", "tags": 3}]}, "tags must be"),
        ({"vhosts": "/"}, "'vhosts' must be a list"),
        ({"vhosts": [{"description": "no name"}]}, "'name' is missing"),
    ],
)
def test_malformed_definitions_are_refused_with_the_reason(definitions, reason):
    broker = core.Broker()
    with pytest.raises(InvalidDefinitions, match=reason.replace("(", r"\(")):
        import_access(broker, definitions)
    assert broker.permissions.get("/", "guest").configure == ".*"
    assert list(broker.topic_permissions) == []
