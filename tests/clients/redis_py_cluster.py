#!/usr/bin/env python3
"""redis-py's `RedisCluster` against cache-nodes in cluster mode: it discovers the nodes with
CLUSTER SLOTS from one address, then talks to the owner of each key. Against the proxy
(which lists itself as the one node owning every slot) everything goes through it.

    python3 tests/clients/redis_py_cluster.py HOST:PORT [node|proxy]

Runs under RESP2 and RESP3. Prints one line per check and exits 1 if any failed; exit 3
with "SKIPPED" when the `redis` module is missing.
"""

import signal
import sys
import uuid

# Three nodes in cluster mode, or the proxy as a cluster of one.
PRIMARIES = 1 if sys.argv[2:3] == ["proxy"] else 3

try:
    import redis
    from redis.cluster import RedisCluster
    from checks import run_checks
except ImportError:
    print("SKIPPED redis-py cluster: python module 'redis' is not installed")
    sys.exit(3)


def check_discovers_every_node(rc, tag):
    nodes = rc.get_primaries()
    assert len(nodes) == PRIMARIES, nodes
    slots = rc.cluster_slots(target_nodes=RedisCluster.RANDOM)
    assert sum(end - start + 1 for (start, end) in slots) == 16384, slots


def check_set_get_everywhere(rc, tag):
    keys = [f"{tag}:k{i}" for i in range(60)]
    for i, k in enumerate(keys):
        assert rc.set(k, i) is True
    for i, k in enumerate(keys):
        assert rc.get(k) == str(i).encode(), k
    owners = {rc.get_node_from_key(k).name for k in keys}
    assert len(owners) == PRIMARIES, owners
    assert rc.delete(*keys) == len(keys)


def check_mget_by_hash_tag(rc, tag):
    keys = [f"{{{tag}}}:{i}" for i in range(10)]
    assert rc.mset({k: f"v{i}" for i, k in enumerate(keys)}) is True
    assert rc.mget(keys) == [f"v{i}".encode() for i in range(10)]
    # Keys of different slots: split by the client, one MGET per node.
    spread = [f"{tag}:m{i}" for i in range(20)]
    for k in spread:
        rc.set(k, k)
    assert rc.mget_nonatomic(spread) == [k.encode() for k in spread]


def check_cross_slot_refused(rc, tag):
    node = rc.get_node_from_key(f"{tag}:a")
    direct = redis.Redis(host=node.host, port=node.port)
    other = next(f"{tag}:b{i}" for i in range(100) if rc.keyslot(f"{tag}:b{i}") != rc.keyslot(f"{tag}:a"))
    try:
        direct.execute_command("MSET", f"{tag}:a", "1", other, "2")
        raise AssertionError("MSET across slots was accepted")
    except redis.ResponseError as e:
        assert str(e) == "CROSSSLOT Keys in request don't hash to the same slot", str(e)


def check_pipeline(rc, tag):
    pipe = rc.pipeline()
    for i in range(30):
        pipe.set(f"{tag}:p{i}", i)
        pipe.incr(f"{tag}:p{i}")
    results = pipe.execute()
    assert results == sum(([True, i + 1] for i in range(30)), []), results
    assert rc.get(f"{tag}:p7") == b"8"


def check_transaction_in_one_hash_tag(rc, tag):
    key = f"{{{tag}}}:balance"
    node = rc.get_node_from_key(key)
    r = rc.get_redis_connection(node)
    with r.pipeline(transaction=True) as tx:
        tx.set(key, 100)
        tx.decrby(key, 30)
        tx.set(f"{{{tag}}}:log", "debited 30")
        assert tx.execute() == [True, 70, True]
    assert rc.get(key) == b"70"


def check_moved_is_followed(rc, tag):
    # A client that starts with a wrong idea of the table: it learns from MOVED.
    key = f"{tag}:moved"
    owner = rc.get_node_from_key(key)
    wrong = next(n for n in rc.get_primaries() if n.name != owner.name)
    direct = redis.Redis(host=wrong.host, port=wrong.port)
    try:
        direct.get(key)
        raise AssertionError("a non-owner served the key")
    except redis.ResponseError as e:
        assert str(e).startswith(f"MOVED {rc.keyslot(key)} {owner.host}:{owner.port}"), str(e)
    assert rc.set(key, "x") is True and rc.get(key) == b"x"


CHECKS = [
    check_discovers_every_node,
    check_set_get_everywhere,
    check_mget_by_hash_tag,
    check_pipeline,
    check_transaction_in_one_hash_tag,
]
if PRIMARIES > 1:
    # Only real cluster nodes refuse keys of two slots and redirect; the proxy serves both.
    CHECKS += [check_cross_slot_refused, check_moved_is_followed]


def main():
    signal.alarm(60)
    host, port = sys.argv[1].rsplit(":", 1)
    run_checks(
        CHECKS,
        lambda protocol: RedisCluster(host=host, port=int(port), protocol=protocol),
        lambda: f"cl{uuid.uuid4().hex[:8]}",
    )


if __name__ == "__main__":
    main()
