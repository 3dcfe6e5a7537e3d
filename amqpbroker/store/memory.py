"""A store that keeps durable state in this process's memory.

It outlives a broker restart inside one process (the embedded broker and the test plugin use that),
and it is the verified fake of the LMDB store: both pass the same contract tests.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from .base import (
    DeleteBinding,
    DeleteExchange,
    DeleteMessage,
    DeleteQueue,
    DeleteRecord,
    DeleteVHost,
    Dequeue,
    Enqueue,
    MarkDelivered,
    Mended,
    Op,
    PutBinding,
    PutExchange,
    PutMessage,
    PutQueue,
    PutRecord,
    PutVHost,
    Recovered,
    SetDeliveryCount,
    Store,
    StoredMessage,
    counts_deliveries,
)


class MemoryStore(Store):
    def __init__(self) -> None:
        self._vhosts: dict[str, None] = {}
        self._exchanges: dict[tuple[str, str], PutExchange] = {}
        self._queues: dict[tuple[str, str], PutQueue] = {}
        self._bindings: dict[tuple, PutBinding] = {}
        self._messages: dict[int, StoredMessage] = {}
        self._entries: dict[tuple[str, str], dict[int, tuple[int, int | None, int]]] = {}
        """Per queue, by seq: the entry's message id, expiry and delivery count."""
        self._delivered: dict[tuple[str, str], int] = {}
        self._records: dict[tuple[str, tuple[str, ...]], PutRecord] = {}
        self._crashed = False

    def apply(self, ops: Sequence[Op]) -> None:
        for op in ops:
            kind = type(op)
            if kind is Enqueue:
                self._entries.setdefault((op.vhost, op.queue), {})[op.seq] = (op.message_id, op.expires, 0)
            elif kind is Dequeue:
                self._entries.get((op.vhost, op.queue), {}).pop(op.seq, None)
            elif kind is SetDeliveryCount:
                entries = self._entries.get((op.vhost, op.queue), {})
                entry = entries.get(op.seq)
                if entry is not None:
                    entries[op.seq] = (entry[0], entry[1], op.delivery_count)
            elif kind is PutMessage:
                self._messages[op.message_id] = StoredMessage(*op[1:])
            elif kind is DeleteMessage:
                self._messages.pop(op.message_id, None)
            elif kind is MarkDelivered:
                self._delivered[op.vhost, op.queue] = op.seq
            elif kind is PutVHost:
                self._vhosts[op.name] = None
            elif kind is DeleteVHost:
                self._vhosts.pop(op.name, None)
            elif kind is PutRecord:
                self._records[op.kind, op.key] = op
            elif kind is DeleteRecord:
                self._records.pop((op.kind, op.key), None)
            elif kind is PutExchange:
                self._exchanges[op.vhost, op.name] = op
            elif kind is DeleteExchange:
                self._exchanges.pop((op.vhost, op.name), None)
            elif kind is PutQueue:
                self._queues[op.vhost, op.name] = op
            elif kind is DeleteQueue:
                self._queues.pop((op.vhost, op.name), None)
                self._entries.pop((op.vhost, op.name), None)
                self._delivered.pop((op.vhost, op.name), None)
            elif kind is PutBinding:
                self._bindings[_binding_key(op)] = op
            elif kind is DeleteBinding:
                self._bindings.pop(_binding_key(op), None)

    def _mend(self) -> Mended:
        mended = Mended(crashed=self._crashed)
        referenced: set[int] = set()
        for (vhost, queue), entries in self._entries.items():
            stored_queue = (vhost, queue) in self._queues
            for seq, (message_id, _, _) in list(entries.items()):
                if not stored_queue:
                    mended.queueless += 1
                elif message_id not in self._messages:
                    mended.missing.append((vhost, queue, seq, message_id))
                else:
                    referenced.add(message_id)
                    continue
                del entries[seq]
            if self._crashed and entries:
                delivered = self._delivered.get((vhost, queue), -1)
                if counts_deliveries(self._queues[vhost, queue]):
                    for seq, (message_id, expires, count) in entries.items():
                        if seq <= delivered and not count:
                            entries[seq] = (message_id, expires, 1)
                self._delivered[vhost, queue] = max(delivered, max(entries))
        for message_id in self._messages.keys() - referenced:
            del self._messages[message_id]
            mended.unreferenced += 1
        self._crashed = False
        return mended

    def _topology(self) -> Recovered:
        return Recovered(
            vhosts=list(self._vhosts),
            exchanges=list(self._exchanges.values()),
            queues=list(self._queues.values()),
            bindings=list(self._bindings.values()),
            records=list(self._records.values()),
        )

    def queue_entries(self, vhost: str, queue: str) -> Iterator[tuple[int, int, int | None]]:
        for seq, (message_id, expires, _) in sorted(self._entries.get((vhost, queue), {}).items()):
            yield seq, message_id, expires

    def delivery_counts(self, vhost: str, queue: str) -> dict[int, int]:
        return {seq: count for seq, (_, _, count) in self._entries.get((vhost, queue), {}).items() if count}

    def delivered_upto(self, vhost: str, queue: str) -> int:
        return self._delivered.get((vhost, queue), -1)

    def load_header(self, message_id: int) -> tuple[str, str, bytes, int]:
        message = self._messages[message_id]
        return message.exchange, message.routing_key, message.properties, len(message.body)

    def load_body(self, message_id: int) -> bytes:
        return self._messages[message_id].body

    def max_message_id(self) -> int:
        return max(self._messages, default=-1)

    def close(self, *, clean: bool = True) -> None:
        # The store outlives the broker in this process: an unclean close is remembered until the
        # next broker has recovered from it.
        self._crashed = self._crashed or not clean


def _binding_key(op: PutBinding | DeleteBinding) -> tuple:
    return (op.vhost, op.exchange, op.destination_type, op.destination, op.routing_key, _frozen(op.arguments))


def _frozen(value: object) -> object:
    """A hashable form of a field value in which equal tables are equal whatever their key order."""
    if isinstance(value, dict):
        return "table", tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list):
        return "array", tuple(_frozen(item) for item in value)
    return type(value).__name__, value
