"""Host batch layouts derived from the mesh, and global batches built from host rows."""

import jax
import numpy as np
import pytest

from eurollm_jax.parallel import ShardingError, create_mesh, host_batch_layout, make_global_batch


def _hosts(devices_per_process):
    """Pretend the 8 emulated devices belong to consecutive processes."""
    return lambda d: d.id // devices_per_process


@pytest.mark.parametrize(
    "shape, per_process, expected",
    [
        # 2 processes x 4 devices: (data 2) splits rows between hosts
        ((2, 2, 2), 4, [(0, 4, 0, 2), (4, 8, 1, 2)]),
        # (fsdp 2 x tensor 4): each host holds one fsdp shard
        ((1, 2, 4), 4, [(0, 4, 0, 2), (4, 8, 1, 2)]),
        # pure tensor parallel over hosts: both hold every row (replicas load the same rows)
        ((1, 1, 8), 4, [(0, 8, 0, 1), (0, 8, 0, 1)]),
        # 4 processes x 2 devices on (2,2,2): one (data, fsdp) cell per host
        ((2, 2, 2), 2, [(0, 2, 0, 4), (2, 4, 1, 4), (4, 6, 2, 4), (6, 8, 3, 4)]),
        # 8 single-device processes, tensor 2: pairs of hosts share rows
        ((2, 2, 2), 1, [(0, 2, 0, 4), (0, 2, 0, 4), (2, 4, 1, 4), (2, 4, 1, 4),
                        (4, 6, 2, 4), (4, 6, 2, 4), (6, 8, 3, 4), (6, 8, 3, 4)]),
    ],
)
def test_layout_follows_the_mesh(shape, per_process, expected):
    mesh = create_mesh(shape)
    got = [
        host_batch_layout(mesh, 8, p, process_of=_hosts(per_process))
        for p in range(8 // per_process)
    ]
    assert [(g.start, g.stop, g.shard_index, g.shard_count) for g in got] == expected
    # every row is held by some process, and equal shard indices mean equal rows
    assert set().union(*[set(range(g.start, g.stop)) for g in got]) == set(range(8))
    by_shard = {}
    for g in got:
        assert by_shard.setdefault(g.shard_index, g.rows) == g.rows


def test_interleaved_hosts_are_refused():
    devices = jax.devices()
    order = [devices[i] for i in (0, 4, 1, 5, 2, 6, 3, 7)]  # hosts alternate along data
    mesh = create_mesh((8, 1, 1), devices=order)
    with pytest.raises(ShardingError, match="not one aligned contiguous block"):
        host_batch_layout(mesh, 8, 0, process_of=_hosts(4))


def test_batch_must_divide_the_data_axes():
    with pytest.raises(ShardingError, match="data x fsdp = 4"):
        host_batch_layout(create_mesh((2, 2, 2)), 6)


def test_make_global_batch_places_rows_and_checks_counts():
    mesh = create_mesh((2, 2, 2))
    x = np.arange(16).reshape(8, 2)
    out = make_global_batch({"tokens": x}, mesh, 8, dtype=np.int32)["tokens"]
    assert out.shape == (8, 2) and out.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(out), x)
    assert out.sharding.spec[0] == ("data", "fsdp")
    with pytest.raises(ShardingError, match="has 4 rows"):
        make_global_batch({"tokens": x[:4]}, mesh, 8)
