"""The transparency log as seen by the other services: queue a leaf inside your transaction.

A queued leaf commits or rolls back with the change it records (log_entries is the outbox); the
sequencer then gives it its index in the Merkle log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mutualaid.db.models import LogEntry
from mutualaid.transparency.leaves import canonical_leaf


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def queue_leaf(
    session: Session, *, at: datetime, leaf_type: str, fields: Mapping[str, Any],
    subject_type: str, subject_ref: str,
) -> LogEntry:
    data = canonical_leaf(leaf_type, fields)
    entry = LogEntry(leaf_type=leaf_type, leaf_data=data, leaf_hash=leaf_hash(data),
                     subject_type=subject_type, subject_ref=subject_ref, queued_at=at)
    session.add(entry)
    return entry


def unix_seconds(at: datetime) -> int:
    return int(at.timestamp())
