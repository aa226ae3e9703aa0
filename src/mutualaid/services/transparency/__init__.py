"""Transparency: the tamper-evident log every decision is published to.

Owns queuing and integrating log leaves, inclusion and consistency proofs, tiles and entry bundles,
signed checkpoints and their witnesses. Use cases: queue_leaf, queue_leaves, integrate_pending,
integrate_all (log.py); inclusion_proof_at, consistency_proof_between, root_at, leaves_between,
hash_tile, entry_bundle (proofs.py); latest_checkpoint, latest_published, checkpoint_at,
publish_checkpoint, proof_bundle (checkpoints.py).
"""
