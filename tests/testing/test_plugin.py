"""The pytest plugin: loaded by its entry point, fixtures only, a vhost of its own for each test."""

from __future__ import annotations

import pika
import pytest

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("test", ["first", "second"])
def test_two_tests_declaring_the_same_queue_do_not_share_it(test, amqp_url, connect):
    channel = connect(amqp_url).channel()
    # Whichever of the two runs second would find the other's message here if they shared a vhost.
    declared = channel.queue_declare("shared", durable=True)
    assert declared.method.message_count == 0
    channel.confirm_delivery()
    channel.basic_publish("", "shared", f"left by the {test} test".encode(), pika.BasicProperties(delivery_mode=2))


def test_amqp_url_names_the_test_s_vhost(amqp_broker, amqp_vhost, amqp_url):
    assert amqp_vhost.startswith("test_amqp_url_names_the_test_s_vhost-")
    assert amqp_url == f"amqp://guest:guest@127.0.0.1:{amqp_broker.port}/{amqp_vhost}"
    assert pika.URLParameters(amqp_url).virtual_host == amqp_vhost


def test_a_test_s_vhost_is_deleted_after_it_with_the_connections_left_open(pytester):
    pytester.makepyfile(
        """
        import pika
        import pika.exceptions
        import pytest

        first = {}

        def test_leaves_a_connection_open(amqp_vhost, amqp_url):
            first["vhost"] = amqp_vhost
            first["connection"] = pika.BlockingConnection(pika.URLParameters(amqp_url))
            first["connection"].channel().queue_declare("left-behind", durable=True)

        def test_finds_it_gone(amqp_broker, amqp_vhost):
            assert amqp_vhost != first["vhost"]
            assert first["vhost"] not in amqp_broker.vhosts()
            with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
                first["connection"].process_data_events(time_limit=5)
            assert closed.value.reply_code == 320
            assert closed.value.reply_text == f"CONNECTION_FORCED - vhost '{first['vhost']}' is deleted"
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_plugin_is_loaded_by_its_entry_point_and_starts_nothing_unasked(pytester):
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--setup-show")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["plugins: *amqpbroker-*"])
    assert "amqp_" not in result.stdout.str()
