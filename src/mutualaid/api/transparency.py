"""The public transparency log: checkpoint and C2SP tlog-tiles under /log, JSON proofs, leaves and
proof bundles under /api/v1/log. Everything here is public and read-only (no authentication)."""

from __future__ import annotations

import base64
import gzip
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from mutualaid.adapters import Int64
from mutualaid.api.dependencies import Context
from mutualaid.api.openapi import PUBLIC_READ, json_document, raw
from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.services.transparency.checkpoints import (
    checkpoint_at,
    latest_published,
    proof_bundle,
)
from mutualaid.services.transparency.log import MAX_LEAVES_PAGE
from mutualaid.services.transparency.proofs import (
    consistency_proof_between,
    entry_bundle,
    hash_tile,
    inclusion_proof_at,
    leaf_index_of,
    leaves_between,
    log_size,
)
from mutualaid.transparency.errors import LeafError, VerificationError
from mutualaid.transparency.leaves import decode_leaf
from mutualaid.transparency.tiles import encode_entry_bundle, parse_tile_path

tiles = APIRouter(prefix="/log", tags=["transparency log"])
api = APIRouter(prefix="/api/v1/log", tags=["transparency log"])

#: tlog-tiles: tiles and entry bundles are immutable. A partial one (``.p/<W>``) too: its path
#: names its width, so its bytes never change; the log only adds the full one beside it later.
_IMMUTABLE = "public, max-age=31536000, immutable"
#: tlog-tiles: the checkpoint is mutable and must not be cached beyond a few seconds.
_FRESH = "no-cache"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- C2SP tlog-tiles --------------------------------------------------------------------------


@tiles.get(
    "/checkpoint",
    operation_id="log-checkpoint-note",
    response_class=Response,
    responses=raw(("text/plain",), "The checkpoint, a C2SP signed note") | PUBLIC_READ,
)
def checkpoint_note(ctx: Context) -> Response:
    """The latest published checkpoint: a C2SP signed note, signed by the log and cosigned by
    at least the quorum of witnesses."""
    with ctx.reading(replica=True) as session:
        checkpoint = latest_published(session)
    if checkpoint is None:
        raise NotFound("no_checkpoint", "the log has not published a checkpoint yet")
    return Response(
        checkpoint.note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": _FRESH}
    )


@tiles.get(
    "/tile/{tile_path:path}",
    operation_id="log-tile",
    response_class=Response,
    responses=raw(("application/octet-stream",), "The tile's bytes", binary=True) | PUBLIC_READ,
)
def tile(tile_path: str, request: Request, ctx: Context) -> Response:
    """A tlog-tiles hash tile (``<L>/<N>[.p/<W>]``) or entry bundle (``entries/<N>[.p/<W>]``)."""
    try:
        ref = parse_tile_path(tile_path)
    except VerificationError as error:
        raise NotFound("no_tile", error.message, "tile_path") from None
    with ctx.reading(replica=True) as session:
        if ref.level is None:
            body = encode_entry_bundle(entry_bundle(session, ref.index, ref.width))
        else:
            body = b"".join(hash_tile(session, ref.level, ref.index, ref.width))
    if not body:
        raise NotFound("no_tile", f"the log has not grown to {ref.path} yet", "tile_path")
    headers = {"Cache-Control": _IMMUTABLE}
    if ref.level is None:
        # Entry bundles (the leaves, JSON text) compress well: gzip when the client accepts it.
        # Deterministic (no timestamp), so every copy of a bundle is the same bytes.
        headers["Vary"] = "Accept-Encoding"
        if _accepts_gzip(request.headers.get("accept-encoding")):
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/octet-stream", headers=headers)


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header (RFC 9110 §12.5.3) allows gzip: named (or x-gzip) or
    covered by ``*``, with a q-value above 0."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False


# --- JSON ---------------------------------------------------------------------------------------


class CheckpointOut(BaseModel):
    size: int
    root_hash: str  # base64, as in the note
    root_hash_hex: str
    note: str
    cosigners: int
    quorum: int
    created_at: datetime
    published_at: datetime | None
    #: Leaves integrated so far; may be ahead of the checkpoint until the next one is published.
    integrated_size: int


class InclusionOut(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str  # hex
    proof: list[str]  # base64 hashes, RFC 9162 order
    checkpoint: str | None  # the published checkpoint at tree_size, when there is one


class ConsistencyOut(BaseModel):
    old_size: int
    new_size: int
    proof: list[str]
    old_checkpoint: str | None
    new_checkpoint: str | None


class LeafOut(BaseModel):
    index: int
    leaf_hash: str
    leaf_data: str  # base64 of the canonical leaf bytes
    leaf: dict[str, Any] | None
    leaf_type: str
    subject_type: str
    subject_ref: str


class LeavesOut(BaseModel):
    start: int
    end: int
    leaves: list[LeafOut]
    next: int | None


def _default_size(ctx: Context, size: int | None) -> int:
    if size is not None:
        return size
    with ctx.reading(replica=True) as session:
        checkpoint = latest_published(session)
    if checkpoint is None:
        raise NotFound("no_checkpoint", "the log has not published a checkpoint yet; pass size")
    return checkpoint.size


@api.get(
    "/checkpoint",
    operation_id="log-checkpoint",
    response_model=CheckpointOut,
    responses=PUBLIC_READ,
)
def checkpoint_json(ctx: Context) -> CheckpointOut:
    """The latest published checkpoint, parsed."""
    with ctx.reading(replica=True) as session:
        checkpoint = latest_published(session)
        integrated = log_size(session)
    if checkpoint is None:
        raise NotFound("no_checkpoint", "the log has not published a checkpoint yet")
    return CheckpointOut(
        size=checkpoint.size,
        root_hash=_b64(checkpoint.root_hash),
        root_hash_hex=checkpoint.root_hash.hex(),
        note=checkpoint.note,
        cosigners=checkpoint.cosigners,
        quorum=checkpoint.quorum,
        created_at=checkpoint.created_at,
        published_at=checkpoint.published_at,
        integrated_size=integrated,
    )


@api.get(
    "/proofs/inclusion",
    operation_id="log-inclusion-proof",
    response_model=InclusionOut,
    responses=PUBLIC_READ,
)
def inclusion(
    ctx: Context,
    index: Annotated[Int64 | None, Query(ge=0, description="The leaf's index")] = None,
    leaf_hash: Annotated[
        str | None, Query(pattern="^[0-9a-f]{64}$", description="Or the leaf's RFC 9162 hash, hex")
    ] = None,
    size: Annotated[
        Int64 | None, Query(ge=1, description="Tree size; default: the latest published checkpoint")
    ] = None,
) -> InclusionOut:
    """An inclusion proof by leaf index or by leaf hash (RFC 9162 §2.1.3)."""
    if (index is None) == (leaf_hash is None):
        raise DomainError("bad_query", "give exactly one of index and leaf_hash", "index")
    tree_size = _default_size(ctx, size)
    with ctx.reading(replica=True) as session:
        if index is None:
            assert leaf_hash is not None
            index = leaf_index_of(session, bytes.fromhex(leaf_hash), tree_size)
        proof = inclusion_proof_at(session, index, tree_size)
        hash_value = leaves_between(session, index, index + 1)[0].leaf_hash
        published = checkpoint_at(session, tree_size)
    return InclusionOut(
        leaf_index=index,
        tree_size=tree_size,
        leaf_hash=hash_value.hex(),
        proof=[_b64(h) for h in proof],
        checkpoint=published.note if published and published.published else None,
    )


@api.get(
    "/proofs/consistency",
    operation_id="log-consistency-proof",
    response_model=ConsistencyOut,
    responses=PUBLIC_READ,
)
def consistency(
    ctx: Context,
    old: Annotated[Int64, Query(ge=0, description="The older tree size")],
    new: Annotated[
        Int64 | None,
        Query(ge=0, description="The newer tree size; default: the latest published checkpoint"),
    ] = None,
) -> ConsistencyOut:
    """A consistency proof between two tree sizes (RFC 9162 §2.1.4)."""
    new_size = _default_size(ctx, new)
    with ctx.reading(replica=True) as session:
        proof = consistency_proof_between(session, old, new_size)
        notes = [checkpoint_at(session, s) for s in (old, new_size)]
    old_note, new_note = (n.note if n and n.published else None for n in notes)
    return ConsistencyOut(
        old_size=old,
        new_size=new_size,
        proof=[_b64(h) for h in proof],
        old_checkpoint=old_note,
        new_checkpoint=new_note,
    )


@api.get(
    "/leaves",
    operation_id="log-leaves",
    response_model=LeavesOut,
    responses=PUBLIC_READ,
)
def leaves(
    ctx: Context,
    start: Annotated[Int64, Query(ge=0)] = 0,
    end: Annotated[
        Int64 | None,
        Query(ge=0, description=f"Exclusive; at most {MAX_LEAVES_PAGE} leaves per page"),
    ] = None,
) -> LeavesOut:
    """Integrated leaves with their decoded records, a page at a time."""
    stop = min(start + MAX_LEAVES_PAGE, end if end is not None else start + 100)
    with ctx.reading(replica=True) as session:
        rows = leaves_between(session, start, stop)
        integrated = log_size(session)
    out = []
    for row in rows:
        try:
            record: dict[str, Any] | None = {
                "type": (leaf := decode_leaf(row.leaf_data)).type,
                **leaf.fields,
            }
        except LeafError:
            record = None
        out.append(
            LeafOut(
                index=row.index,
                leaf_hash=row.leaf_hash.hex(),
                leaf_data=_b64(row.leaf_data),
                leaf=record,
                leaf_type=row.leaf_type,
                subject_type=row.subject_type,
                subject_ref=row.subject_ref,
            )
        )
    more = stop < integrated and (end is None or stop < end)
    return LeavesOut(start=start, end=stop, leaves=out, next=stop if more else None)


@api.get(
    "/bundles/{subject_type}/{subject_ref:path}",
    operation_id="log-bundle",
    response_class=Response,
    responses=json_document("A proof bundle (`mutualaid verify bundle` checks it)") | PUBLIC_READ,
)
def bundle(
    subject_type: str,
    subject_ref: str,
    ctx: Context,
    older_size: Annotated[
        Int64 | None,
        Query(
            ge=0, description="Also prove consistency with the published checkpoint at this size"
        ),
    ] = None,
) -> Response:
    """A self-contained proof bundle: every leaf about the subject (e.g. ``claim``/its ref) with
    its inclusion proof at the latest published checkpoint, the checkpoint and the keys. Check it
    offline with ``mutualaid verify bundle FILE``."""
    result = proof_bundle(ctx, subject_type, subject_ref, older_size=older_size)
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", f"proof-{subject_type}-{subject_ref}.json")
    return Response(
        result.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


#: Both routers, for the app's one `include_router` line.
router = APIRouter()
router.include_router(tiles)
router.include_router(api)
