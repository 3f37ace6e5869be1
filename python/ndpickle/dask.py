"""A Dask serialization family, ``"ndpickle"``: Dask's own transport carries ndpickle's frames.

Importing this module registers the family with ``distributed``::

    import ndpickle.dask
    from distributed import Client

    client = Client(
        cluster,
        serializers=["ndpickle", "dask", "pickle"],
        deserializers=["ndpickle", "dask", "pickle", "msgpack"],
    )

Workers decode with the family too, so they must import it as well: start them with
``--preload ndpickle.dask`` (or ``LocalCluster(..., preload=["ndpickle.dask"])``), or let
``Client.register_plugin`` / ``client.run(__import__, "ndpickle.dask")`` do it.

What the family changes against Dask's ``"pickle"`` family:

- arrays leave as out-of-band frames without copies, non-contiguous and broadcast views
  included (numpy copies those in-band under plain pickle; Dask materialises broadcasts);
- each buffer is compressed when it pays, with the byte-shuffle for numeric data
  (:func:`ndpickle.serialize`'s ``compression="auto"``), and Dask is told to leave every
  frame alone (``"compression": False``) instead of running its own codec over data ndpickle
  already decided on; frames ndpickle left plain lz4/zstd are named so, and Dask's receiving
  side decodes them before :func:`loads` sees them (which it recognises by their length).

Like Dask's ``"pickle"`` family, :func:`loads` runs ``pickle.loads``: use it between peers
that trust each other, as Dask does.
"""

from __future__ import annotations

from typing import Any, Optional

from distributed.protocol.serialize import register_serialization_family

from . import deserialize as _deserialize
from . import serialize as _serialize

__all__ = ["FAMILY", "dumps", "loads", "register"]

#: The family's name, for ``Client(serializers=[...], deserializers=[...])``.
FAMILY = "ndpickle"


def dumps(
    x: Any,
    context: Optional[dict[str, Any]] = None,
    *,
    compression: Optional[str] = "auto",
    shuffle: bool = True,
) -> tuple[dict[str, Any], list[Any]]:
    """Dask's ``(header, frames)`` for ``x``: :func:`ndpickle.serialize`, with every frame
    that is not plain lz4/zstd marked ``False`` so that Dask does not compress it again.

    ``context`` is what Dask passes to families that accept it (unused).
    """
    del context
    header, frames = _serialize(x, compression=compression, shuffle=shuffle)
    header["compression"] = [c if c is not None else False for c in header["compression"]]
    return header, frames


def loads(header: dict[str, Any], frames: list[Any]) -> Any:
    """Rebuild the object from the family's ``(header, frames)`` after Dask's transport
    (which has applied ``"compression"`` already; :func:`ndpickle.deserialize` decodes what
    is still compressed, recognised by its length)."""
    # Dask stamps the family's registered name over "serializer".
    return _deserialize({**header, "serializer": "ndpickle"}, list(frames))


def register(name: str = FAMILY, **options: Any) -> None:
    """Registers the family under ``name`` (done for ``"ndpickle"`` on import);
    ``options`` (``compression``, ``shuffle``) are passed to every :func:`dumps`."""

    def family_dumps(
        x: Any, context: Optional[dict[str, Any]] = None
    ) -> tuple[dict[str, Any], list[Any]]:
        return dumps(x, context, **options)

    register_serialization_family(name, family_dumps, loads)  # type: ignore[no-untyped-call]


register()
