"""Topic routing: a word trie matched with RabbitMQ's rules for `*` and `#`.

Keys and patterns are split on dots; the empty key has zero words, so `a.` and `.a` have an empty
word. `*` matches exactly one word, `#` matches zero or more. Results are cached per routing key
until the bindings change, since most applications publish with few distinct keys.
"""

from __future__ import annotations

from typing import Hashable

_CACHE_LIMIT = 4096


def split_key(key: str) -> list[str]:
    return key.split(".") if key else []


class _Node:
    __slots__ = ("children", "destinations")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.destinations: dict[Hashable, int] = {}


class TopicTrie:
    """Bindings of patterns to destinations; `match(key)` gives every destination once."""

    def __init__(self) -> None:
        self._root = _Node()
        self._cache: dict[str, frozenset] = {}

    def add(self, pattern: str, destination: Hashable) -> None:
        node = self._root
        for word in split_key(pattern):
            node = node.children.setdefault(word, _Node())
        # A destination bound twice with one pattern (e.g. with different arguments) counts twice.
        node.destinations[destination] = node.destinations.get(destination, 0) + 1
        self._cache.clear()

    def remove(self, pattern: str, destination: Hashable) -> None:
        path = [self._root]
        words = split_key(pattern)
        for word in words:
            child = path[-1].children.get(word)
            if child is None:
                return
            path.append(child)
        node = path[-1]
        count = node.destinations.get(destination, 0)
        if count <= 1:
            node.destinations.pop(destination, None)
        else:
            node.destinations[destination] = count - 1
        # Prune empty branches so the trie does not keep every pattern ever bound.
        for depth in range(len(words), 0, -1):
            node = path[depth]
            if node.destinations or node.children:
                break
            del path[depth - 1].children[words[depth - 1]]
        self._cache.clear()

    def match(self, key: str) -> frozenset:
        found = self._cache.get(key)
        if found is None:
            result: set = set()
            self._collect(self._root, split_key(key), 0, result)
            found = frozenset(result)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _collect(self, node: _Node, words: list[str], i: int, result: set) -> None:
        children = node.children
        hash_node = children.get("#")
        if hash_node is not None:
            # `#` swallows zero or more words: try every split point.
            for j in range(i, len(words) + 1):
                self._collect(hash_node, words, j, result)
        if i == len(words):
            result.update(node.destinations)
            return
        star = children.get("*")
        if star is not None:
            self._collect(star, words, i + 1, result)
        literal = children.get(words[i])
        if literal is not None:
            self._collect(literal, words, i + 1, result)
