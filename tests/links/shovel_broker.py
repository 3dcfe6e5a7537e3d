"""`python -m tests.links.shovel_broker DATA_DIR PORT SHOVELS`: the broker on an LMDB data directory,
with the shovels SHOVELS (JSON: name to definition, vhost "/") started with it, until killed.

Shovel definitions are not kept by the broker yet (they will be runtime parameters), so a restarted
broker is given them again here, as it would read them back from its store.
"""

from __future__ import annotations

import json
import logging
import sys

import trio

from amqpbroker import core
from amqpbroker.core.shovels import ShovelConfig
from amqpbroker.server import Server
from amqpbroker.store import open_store


def main() -> None:
    data_dir, port, shovels = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = Server(core.Broker(store=open_store(data_dir)), host="127.0.0.1", port=port, data_dir=data_dir)
    for name, value in shovels.items():
        server.set_shovel("/", name, ShovelConfig.from_value(value))
    trio.run(server.serve)


if __name__ == "__main__":
    main()
