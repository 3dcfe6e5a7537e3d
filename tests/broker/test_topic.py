"""Topic matching with RabbitMQ's rules, and the trie checked against a slow reference matcher."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqpbroker.core.topic import TopicTrie


def words(key: str) -> list[str]:
    """RabbitMQ's split: the empty key has no words; every dot separates two (maybe empty) words."""
    return key.split(".") if key else []


def reference_match(pattern: list[str], key: list[str]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(reference_match(rest, key[i:]) for i in range(len(key) + 1))
    if not key:
        return False
    return (head == "*" or head == key[0]) and reference_match(rest, key[1:])


def trie_matches(pattern: str, key: str) -> bool:
    trie = TopicTrie()
    trie.add(pattern, "q")
    return "q" in trie.match(key)


RULES = [
    # literal words
    ("a.b", "a.b", True),
    ("a.b", "a.c", False),
    ("a.b", "a.b.c", False),
    ("a", "ab", False),
    # `*` is exactly one word
    ("a.*", "a.b", True),
    ("a.*", "a", False),
    ("a.*", "a.b.c", False),
    ("*", "a", True),
    ("*", "", False),
    ("*.b", "a.b", True),
    ("*.*", "a", False),
    # `#` is zero or more words
    ("#", "", True),
    ("#", "a", True),
    ("#", "a.b.c", True),
    ("a.#", "a", True),
    ("a.#", "a.b", True),
    ("a.#", "a.b.c", True),
    ("a.#", "ab", False),
    ("a.#", "b.a", False),
    ("#.a", "a", True),
    ("#.a", "x.y.a", True),
    ("#.a", "a.b", False),
    ("a.#.b", "a.b", True),
    ("a.#.b", "a.x.y.b", True),
    ("a.#.b", "a.x.y", False),
    ("a.#.#.b", "a.b", True),
    ("#.b.#", "b", True),
    ("#.b.#", "a.b.c", True),
    ("#.b.#", "a.c", False),
    ("#.#", "", True),
    ("#.#", "a", True),
    ("#.#", "a.b.c", True),
    ("*.#", "", False),
    ("*.#", "a", True),
    ("*.#", "a.b.c", True),
    ("#.*", "", False),
    ("#.*", "a", True),
    ("#.*", "a.b", True),
    ("*.#.*", "a", False),
    ("*.#.*", "a.b", True),
    # the empty key and the empty pattern
    ("", "", True),
    ("", "a", False),
    ("a", "", False),
    # empty words are words
    ("a..b", "a..b", True),
    ("a.*.b", "a..b", True),
    ("a.b", "a..b", False),
    ("a..b", "a.b", False),
    ("a.", "a.", True),
    ("a.", "a", False),
    ("a.*", "a.", True),
    (".a", ".a", True),
    ("*.a", ".a", True),
    ("*", ".", False),
    ("*.*", ".", True),
    ("#", ".", True),
    # many dots
    ("*.*.*", "..", True),
    ("*.*", "...", False),
    ("#", "....", True),
    ("a.#", "a....", True),
    ("*.*.*.*.*", "....", True),
    ("#.*.*.*.*.*", "....", True),
    ("#.*.*.*.*.*.*", "....", False),
]


@pytest.mark.parametrize(("pattern", "key", "expected"), RULES)
def test_topic_pattern_matches_like_rabbitmq(pattern: str, key: str, expected: bool) -> None:
    assert trie_matches(pattern, key) is expected
    # The rules table itself must agree with the reference matcher the property test trusts.
    assert reference_match(words(pattern), words(key)) is expected


def test_destination_matched_by_several_patterns_is_returned_once() -> None:
    trie = TopicTrie()
    for pattern in ("a.*", "#", "a.b", "a.#", "*.b"):
        trie.add(pattern, "q")
    trie.add("a.c", "other")
    assert trie.match("a.b") == {"q"}


def test_binding_added_twice_needs_two_removes() -> None:
    trie = TopicTrie()
    trie.add("a.*", "q")
    trie.add("a.*", "q")
    trie.remove("a.*", "q")
    assert trie.match("a.b") == {"q"}
    trie.remove("a.*", "q")
    assert trie.match("a.b") == frozenset()


def test_match_cache_is_invalidated_by_add_and_remove() -> None:
    trie = TopicTrie()
    assert trie.match("a.b") == frozenset()
    trie.add("a.b", "q")
    assert trie.match("a.b") == {"q"}
    trie.remove("a.b", "q")
    assert trie.match("a.b") == frozenset()


def test_removing_unknown_binding_changes_nothing() -> None:
    trie = TopicTrie()
    trie.add("a.b", "q")
    trie.remove("a", "q")
    trie.remove("a.b.c", "q")
    trie.remove("a.b", "other")
    assert trie.match("a.b") == {"q"}


def test_removing_every_binding_prunes_the_trie() -> None:
    trie = TopicTrie()
    patterns = ["a.b.c", "a.#", "*.b", "#", "a..b", ""]
    for pattern in patterns:
        trie.add(pattern, "q")
    for pattern in patterns:
        trie.remove(pattern, "q")
    assert trie._root.children == {} and trie._root.destinations == {}


# Few distinct words, so random keys and patterns meet often; `*` and `#` may appear in keys too,
# where they are plain words.
_key_words = st.sampled_from(["a", "b", "", "*", "#"])
_pattern_words = st.sampled_from(["a", "b", "", "*", "#"])
keys = st.lists(_key_words, max_size=6).map(".".join)
patterns = st.lists(_pattern_words, max_size=5).map(".".join)
operations = st.lists(
    st.tuples(st.sampled_from(["add", "add", "remove"]), patterns, st.sampled_from(["q1", "q2", "q3"])),
    max_size=25,
)


@settings(max_examples=400, deadline=None)
@given(operations=operations, probes=st.lists(keys, min_size=1, max_size=8))
def test_trie_agrees_with_reference_matcher(operations: list[tuple[str, str, str]], probes: list[str]) -> None:
    trie = TopicTrie()
    bound: Counter[tuple[str, str]] = Counter()
    for op, pattern, destination in operations:
        if op == "add":
            trie.add(pattern, destination)
            bound[(pattern, destination)] += 1
        else:
            trie.remove(pattern, destination)
            if bound[(pattern, destination)]:
                bound[(pattern, destination)] -= 1
        # Probe after every change, so a stale cached match would show.
        for key in probes:
            expected = {d for (p, d), n in bound.items() if n and reference_match(words(p), words(key))}
            assert trie.match(key) == expected, (key, sorted(+bound))
