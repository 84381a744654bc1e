"""Trainer checkpoints with Orbax: asynchronous, atomic, resharding on restore.

A checkpoint directory ``WORKDIR/checkpoints/<step>/`` holds three items:

- ``state``: the train state (step, params, optimizer state, RNG, NaN-guard counter),
  written by every process for its own shards (tensorstore);
- ``data``: ``{"phase": i, "iterators": [state of process 0, process 1, ...]}``;
- ``config``: the job config as JSON.

Orbax writes into ``<step>.orbax-checkpoint-tmp`` and renames it when every item is
complete, so a process killed during an (asynchronous) save leaves the previous
checkpoint intact and the half-written temporary directory is ignored and cleaned up.
Restoring reads each array directly into the shardings of the *current* mesh, so a run
may resume on another mesh shape or device count. A checkpoint from another model shape
is refused with the names of the mismatched tensors.
"""

from __future__ import annotations

import json
import logging
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from eurollm_jax.checkpoint import CheckpointMismatchError

log = logging.getLogger(__name__)


def shapes(tree) -> dict[str, tuple]:
    """``{"params/layers/mlp/up_proj": shape, ...}``: the array shapes in ``tree`` by path."""
    return {
        jax.tree_util.keystr(path, simple=True, separator="/"): tuple(leaf.shape)
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
        if hasattr(leaf, "shape")
    }


def shape_problems(expected: dict, saved: dict, *, unexpected: bool = True) -> list[str]:
    """One line per tensor whose shape in ``saved`` differs from ``expected`` (both
    path -> shape), is missing, or (``unexpected``) is only in ``saved``."""
    problems = []
    for k, shape in expected.items():
        if k not in saved:
            problems.append(f"{k}: missing from the checkpoint (expected {shape})")
        elif saved[k] != shape:
            problems.append(f"{k}: checkpoint {saved[k]} vs model {shape}")
    if unexpected:
        extra = [k for k in saved if k not in expected]
        problems += [f"{k}: in the checkpoint but not in the model" for k in extra]
    return problems


def gather_json(obj) -> list:
    """``obj`` (JSON-serialisable) from every process, in process order."""
    if jax.process_count() == 1:
        return [obj]
    from jax.experimental import multihost_utils

    data = np.frombuffer(json.dumps(obj).encode(), np.uint8)
    lengths = multihost_utils.process_allgather(np.array([len(data)], np.int32))
    lengths = np.asarray(lengths).reshape(-1)
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: len(data)] = data
    everything = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(lengths), -1)
    return [json.loads(bytes(everything[i, : lengths[i]]).decode()) for i in range(len(lengths))]


def _registry(replica_parallel: bool):
    """Orbax's default type handlers, with replica-parallel array writes off by default:
    they slice every replicated shard with eager jax ops first (seconds per save on small
    meshes); on large data-parallel meshes turning them on spreads the writes."""
    from orbax.checkpoint import type_handlers
    from orbax.checkpoint._src.serialization import type_handler_registry as registry

    handlers = [(t, h) for t, h in registry._DEFAULT_TYPE_HANDLERS if t is not jax.Array]
    handlers.append((jax.Array, type_handlers.ArrayHandler(use_replica_parallel=replica_parallel)))
    return type_handlers.create_type_handler_registry(*handlers)


def _restore_args(abstract, partial: bool = False):
    return ocp.args.PyTreeRestore(
        item=abstract,
        restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
        partial_restore=partial,
    )


class Checkpointer:
    """Keeps the last ``keep`` checkpoints of a run under ``directory``."""

    def __init__(
        self,
        directory: str,
        *,
        keep: int = 3,
        async_save: bool = True,
        replica_parallel: bool = False,
    ):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            enable_async_checkpointing=async_save,
            create=True,
            cleanup_tmp_directories=True,
        )
        handlers = {
            "state": ocp.PyTreeCheckpointHandler(type_handler_registry=_registry(replica_parallel)),
            "data": ocp.JsonCheckpointHandler(),
            "config": ocp.JsonCheckpointHandler(),
        }
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_handlers=handlers
        )

    # ------------------------------------------------------------------ queries
    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def saved_shapes(self, step: int) -> dict[str, tuple]:
        meta = self.manager.item_metadata(step)["state"]
        return shapes(getattr(meta, "tree", meta))

    def check_compatible(self, step: int, abstract_state) -> None:
        """Raise CheckpointMismatchError naming every tensor whose shape differs or is missing."""
        problems = shape_problems(shapes(abstract_state), self.saved_shapes(step))
        if problems and all(p.startswith("opt_state/") for p in problems):
            raise CheckpointMismatchError(
                f"checkpoint {self.directory}/{step}: the parameters match, but the optimizer "
                f"state has another layout ({len(problems)} tensors: "
                + "; ".join(sorted(problems)[:5])
                + "), e.g. written by an older eurollm_jax or another optimizer setting. Keep "
                "the parameters and restart the optimizer: `python -m launch.train --config=... "
                "--workdir=... --export_params=OUT`, then train in a new workdir with "
                "--config.train.init_params=OUT."
            )
        if problems:
            params_first = sorted(problems, key=lambda p: (not p.startswith("params/"), p))
            raise CheckpointMismatchError(
                f"checkpoint {self.directory}/{step} does not match this model/optimizer "
                f"({len(problems)} tensors):\n  "
                + "\n  ".join(params_first[:40])
                + "\nUse the model config the checkpoint was trained with (see its config item), "
                "or a fresh workdir."
            )

    # ------------------------------------------------------------------ save / restore
    def save(
        self, step: int, state, data_state: dict, config: dict, *, force: bool = False
    ) -> bool:
        """Start saving (returns once arrays are copied off the devices)."""
        args = ocp.args.Composite(
            state=ocp.args.PyTreeSave(state),
            data=ocp.args.JsonSave(data_state),
            config=ocp.args.JsonSave(config),
        )
        return self.manager.save(step, args=args, force=force)

    def restore(self, step: int, abstract_state):
        """(state in the shardings of ``abstract_state``, data item, config item)."""
        self.check_compatible(step, abstract_state)
        args = ocp.args.Composite(
            state=_restore_args(abstract_state),
            data=ocp.args.JsonRestore(),
            config=ocp.args.JsonRestore(),
        )
        restored = self.manager.restore(step, args=args)
        log.info("restored checkpoint %s/%d", self.directory, step)
        return restored["state"], restored["data"], restored["config"]

    def restore_params(self, step: int, abstract_params):
        """Only the parameters (e.g. to export them), in the given shardings."""
        expected = shapes({"params": abstract_params})
        bad = shape_problems(expected, self.saved_shapes(step), unexpected=False)
        if bad:
            raise CheckpointMismatchError("parameter mismatch:\n  " + "\n  ".join(bad))
        args = ocp.args.Composite(state=_restore_args({"params": abstract_params}, partial=True))
        return self.manager.restore(step, args=args)["state"]["params"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
