"""A widely used Python client (pymemcache) against a memcached-compatible server.

Usage: python3 pymemcache_check.py PORT KEY_PREFIX. Exits 0 and prints "ok" when every
operation answered as memcached answers it; raises (exit 1) at the first that did not.
"""

import sys

from pymemcache.client.base import Client

port, prefix = int(sys.argv[1]), sys.argv[2]
client = Client(("127.0.0.1", port), connect_timeout=5, timeout=5, default_noreply=False)


def key(name):
    return f"{prefix}{name}"


assert client.set(key("a"), b"1") is True
assert client.get(key("a")) == b"1"
assert client.get(key("missing")) is None
assert client.add(key("a"), b"2") is False
assert client.add(key("b"), b"2") is True
assert client.replace(key("b"), b"3") is True
assert client.replace(key("missing"), b"3") is False
assert client.append(key("b"), b"4") is True
assert client.prepend(key("b"), b"0") is True
assert client.get(key("b")) == b"034"

value, unique = client.gets(key("a"))
assert value == b"1"
assert client.cas(key("a"), b"5", unique) is True
assert client.cas(key("a"), b"6", unique) is False
assert client.cas(key("missing"), b"6", unique) is None
assert client.get(key("a")) == b"5"

assert client.incr(key("missing"), 1) is None
assert client.set(key("n"), b"10") is True
assert client.incr(key("n"), 5) == 15
assert client.decr(key("n"), 20) == 0
assert client.incr(key("n"), 18446744073709551615) == 18446744073709551615
assert client.incr(key("n"), 1) == 0

assert client.touch(key("a"), 100) is True
assert client.touch(key("missing"), 100) is False
assert client.delete(key("a")) is True
assert client.delete(key("a")) is False

# Pipelined multi-gets: 100 keys in one request.
many = {key(f"m{i}"): str(i).encode() for i in range(100)}
assert client.set_many(many) == []
assert client.get_many(list(many)) == many
assert client.get_many([key("m1"), key("missing"), key("m2")]) == {
    key("m1"): b"1",
    key("m2"): b"2",
}
assert client.delete_many(list(many)) is True
assert client.get_many(list(many)) == {}

client.set(key("quiet"), b"x", noreply=True)
assert client.get(key("quiet")) == b"x"

stats = client.stats()
names = {name.decode() if isinstance(name, bytes) else name for name in stats}
for name in ("pid", "uptime", "curr_items", "get_hits", "get_misses", "curr_connections"):
    assert name in names, f"stats lacks {name}"
assert client.version()

client.quit()
print("ok")
