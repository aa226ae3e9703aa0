"""The transparency log's pure core: nothing here touches a database, the network or the clock.

- `merkle`: RFC 9162 tree hashing, proofs from stored perfect subtrees, `MemoryTree`, `CompactRange`
- `notes`: C2SP signed notes and key strings (golang.org/x/mod/sumdb/note compatible)
- `checkpoints`: C2SP tlog-checkpoint bodies, signed by the log
- `witnesses`: C2SP tlog-cosignature v1: the witness's cosign decision and quorum checks
- `leaves`: canonical leaf records (no personal data) and salted commitments
- `verification`: offline proof bundles (one leaf, or every leaf of a subject), as checked by
  `mutualaid verify`
- `tiles`: C2SP tlog-tiles paths and entry bundles, and the 4-level tiles a database stores

The one adapter is `witness_server`: a C2SP tlog-witness HTTP server with its own SQLite file.
"""
