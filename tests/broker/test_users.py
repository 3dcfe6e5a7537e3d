"""Users and their password hashes, as RabbitMQ writes them."""

import pytest

from amqpbroker import core
from amqpbroker.core.users import User, hash_password
from amqpbroker.store import MemoryStore
from amqpbroker.store.base import PutVHost

from .conftest import Peer

# Made by RabbitMQ 3.10 for the password "s3cret" (rabbitmqctl add_user, then the management API).
RABBITMQ_HASH = "I7x4HX53bOytFHhRFWxZxY7RAZyYyjjdK1cB7qGnNmW5iAo3"


def test_a_hash_made_by_rabbitmq_checks_its_password():
    user = User("imported", RABBITMQ_HASH)
    assert user.check_password("s3cret")
    assert not user.check_password("S3cret")


def test_hashes_are_salted():
    assert hash_password("same") != hash_password("same")
    assert User("u", hash_password("same")).check_password("same")


def test_a_user_without_a_hash_cannot_log_in():
    assert not User("nopass", "").check_password("")


def test_guest_is_made_once_in_a_fresh_store_with_all_permissions_on_the_default_vhost():
    store = MemoryStore()
    broker = core.Broker(store=store)
    guest = broker.users.authenticate("guest", "guest")
    assert guest is not None and guest.tags == ["administrator"]
    assert broker.users.authenticate("guest", "wrong") is None
    assert broker.users.authenticate("nobody", "guest") is None
    assert broker.permissions.get("/", "guest") == core.Permission("/", "guest", ".*", ".*", ".*")
    broker.delete_user("guest")
    broker.delete_vhost("/")
    broker.commit()
    restarted = core.Broker(store=store)
    # As RabbitMQ: the defaults are made in a fresh database only, not again after they were deleted.
    assert "guest" not in restarted.users
    assert "/" not in restarted.vhosts


def test_a_store_from_before_users_were_stored_gets_guest():
    store = MemoryStore()
    store.apply([PutVHost("/")])
    broker = core.Broker(store=store)
    assert broker.authenticate("guest", "guest")
    assert broker.can_open_vhost("guest", "/")


def test_users_and_permissions_survive_a_restart():
    store = MemoryStore()
    broker = core.Broker(store=store)
    broker.users.put(User("alice", hash_password("pw"), ["management", "monitoring"]))
    broker.add_vhost("v")
    broker.permissions.set("v", "alice", "^a", "^b", "^c")
    broker.permissions.set("/", "alice", "", "", "")
    broker.permissions.clear("/", "alice")
    broker.commit()
    restarted = core.Broker(store=store)
    alice = restarted.users.authenticate("alice", "pw")
    assert alice is not None and alice.tags == ["management", "monitoring"]
    assert restarted.permissions.of_user("alice") == [core.Permission("v", "alice", "^a", "^b", "^c")]
    assert restarted.users.authenticate("guest", "guest") is not None


def test_deleting_a_user_closes_their_connections_and_removes_their_permissions():
    store = MemoryStore()
    broker = core.Broker(store=store)
    broker.users.put(User("bob", hash_password("pw")))
    broker.permissions.set("/", "bob", ".*", ".*", ".*")
    bob, guest = Peer(broker, user="bob"), Peer(broker)
    assert broker.delete_user("bob")
    assert bob.sink.closed == (320, "CONNECTION_FORCED - user 'bob' is deleted")
    assert guest.sink.closed is None
    assert broker.permissions.of_user("bob") == []
    assert not broker.delete_user("bob")
    broker.commit()
    restarted = core.Broker(store=store)
    assert "bob" not in restarted.users and restarted.permissions.of_user("bob") == []


def test_deleting_a_vhost_closes_its_connections_and_removes_its_permissions():
    store = MemoryStore()
    broker = core.Broker(store=store)
    broker.add_vhost("v")
    broker.permissions.set("v", "guest", ".*", ".*", ".*")
    inside, outside = Peer(broker, vhost="v"), Peer(broker)
    inside.declare("durable-q", durable=True)
    broker.delete_vhost("v")
    assert inside.sink.closed == (320, "CONNECTION_FORCED - vhost 'v' is deleted")
    assert outside.sink.closed is None
    assert broker.permissions.of_vhost("v") == []
    broker.commit()
    restarted = core.Broker(store=store)
    assert "v" not in restarted.vhosts and restarted.permissions.of_vhost("v") == []


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("192.0.2.2", False), ("fd00::2", False), ("", False)],
)
def test_guest_logs_in_from_loopback_only(address: str, allowed: bool):
    broker = core.Broker()
    assert broker.authenticate("guest", "guest", address) is allowed
    broker.users.put(User("remote", hash_password("pw")))
    assert broker.authenticate("remote", "pw", address)


def test_loopback_users_can_be_lifted():
    assert core.Broker(loopback_users=()).authenticate("guest", "guest", "192.0.2.2")


def test_a_vhost_description_survives_a_restart_and_goes_with_the_vhost():
    store = MemoryStore()
    broker = core.Broker(store=store)
    assert broker.vhosts["/"].description == "Default virtual host"
    broker.add_vhost("v")
    broker.describe_vhost("v", "for tests", ["a", "b"], True)
    broker.add_vhost("gone")
    broker.describe_vhost("gone", "deleted", [], False)
    broker.delete_vhost("gone")
    broker.commit()
    restarted = core.Broker(store=store)
    v = restarted.vhosts["v"]
    assert (v.description, v.tags, v.tracing) == ("for tests", ["a", "b"], True)
    restarted.add_vhost("gone")
    assert restarted.vhosts["gone"].description == ""
