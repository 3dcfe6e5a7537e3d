"""Users and their password hashes, as RabbitMQ writes them."""

from amqpbroker.core.users import User, Users, hash_password

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


def test_guest_is_the_default_administrator():
    users = Users()
    guest = users.authenticate("guest", "guest")
    assert guest is not None and guest.tags == ["administrator"]
    assert users.authenticate("guest", "wrong") is None
    assert users.authenticate("nobody", "guest") is None
