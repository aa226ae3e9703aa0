"""Check a mutualaid proof bundle by hand: Python's standard library plus `cryptography`.

    python verify_by_hand.py BUNDLE.json --log-key KEY [--witness-key KEY ...] [--quorum K]
                             [--evidence FILE ...] [--membership ID ...]

Reads a subject bundle (``mutualaid-subject-bundle/v1``, what the app and `mutualaid log bundle`
emit) or a one-leaf proof bundle (``mutualaid-proof-bundle/v1``) and checks, trusting only the
keys given on the command line: the log's signature on the checkpoint, that K of the witnesses
cosigned it, each leaf's inclusion at it, that it extends the bundle's older checkpoint, and
that each --evidence file's SHA-256 is in an included leaf, and that each --membership is named
by an included leaf (as `m-<id>`, or listed in a `membership_events` batch's `membership_ids`).
Without --log-key it uses the keys inside the bundle and says so: those are only what the
operator claims. Exit 0: every check held; 1: a check failed; 2: unreadable input or bad key.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EM_DASH = "\u2014 "


class Failed(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).digest()


def b64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Failed(f"{text!r} is not base64") from None


def parse_key(text, signature_type):
    """A verifier key <name>+<key ID>+<base64(type || 32-byte Ed25519 key)>; key ID =
    SHA-256(name || "\\n" || type || key)[:4]. Type 0x01: the log; 0x04: a witness."""
    name, key_id, material = text.split("+", 2)
    raw = b64(material)
    if len(raw) != 33 or raw[0] != signature_type:
        raise Failed(f"key {name!r} is not an Ed25519 key of type 0x{signature_type:02x}")
    if sha256(name.encode() + b"\n" + raw)[:4].hex() != key_id:
        raise Failed(f"key {name!r} has a wrong key ID {key_id}")
    return {"name": name, "id": bytes.fromhex(key_id), "type": raw[0], "public": raw[1:]}


def open_note(note, keys):
    """A signed note: text ending in a newline, a blank line, signature lines
    "— <name> <base64(key ID || signature)>". Returns the text and the keys whose signature
    verified; a signature by a known key (name and ID both match) must verify, others are
    ignored. A cosignature (type 0x04) is key ID || u64 time || Ed25519 over
    "cosignature/v1\\ntime <time>\\n" || text."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise Failed("note holds a control character")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise Failed("note has no blank line before its signatures")
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    if len(lines) > 100:
        raise Failed("note has more than 100 signature lines")
    verified = []
    for line in lines:
        if not line.startswith(EM_DASH):
            raise Failed(f"note signature line {line!r} does not start with an em dash")
        name, _, blob = line[len(EM_DASH) :].partition(" ")
        blob = b64(blob)
        for key in keys:
            if key["name"] != name or key["id"] != blob[:4]:
                continue
            message, signature = text.encode(), blob[4:]
            if key["type"] == 0x04:
                moment = int.from_bytes(blob[4:12], "big")
                message = f"cosignature/v1\ntime {moment}\n{text}".encode()
                signature = blob[12:]
            try:
                Ed25519PublicKey.from_public_bytes(key["public"]).verify(signature, message)
            except InvalidSignature:
                raise Failed(f"signature by {name!r} is not valid") from None
            verified.append(key)
    return text, verified


def parse_checkpoint(text):
    """<origin>\\n<size>\\n<base64 root>\\n[extension lines]."""
    lines = text.split("\n")
    if len(lines) < 4 or not (lines[1].isascii() and lines[1].isdigit()):
        raise Failed("checkpoint text is not <origin>, <size>, <root hash>")
    root = b64(lines[2])
    if (
        lines[1] != str(int(lines[1]))
        or len(root) != 32
        or base64.b64encode(root).decode() != lines[2]
    ):
        raise Failed("checkpoint size or root hash is not canonical")
    return lines[0], int(lines[1]), root


def node(left, right):
    return sha256(b"\x01" + left + right)


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        raise Failed(f"leaf index {index} is not below the tree size {size}")
    fn, sn, r = index, size - 1, sha256(b"\x00" + leaf)
    for p in proof:
        if sn == 0:
            raise Failed("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise Failed(f"inclusion proof leads to {r.hex()}, not to the root {root.hex()}")


def verify_consistency(old_size, new_size, old_root, new_root, proof):
    """RFC 9162 §2.1.4.2."""
    if old_size > new_size:
        raise Failed(f"the log shrank from {old_size} to {new_size}")
    if old_size == new_size or old_size == 0:
        if proof or (old_size == new_size and old_root != new_root):
            raise Failed(f"sizes {old_size} and {new_size} need an empty proof and equal roots")
        return
    if not proof:
        raise Failed("consistency proof is empty")
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failed("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise Failed(f"consistency proof from size {old_size} to {new_size} does not hold")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--log-key")
    parser.add_argument("--witness-key", action="append", default=[])
    parser.add_argument("--quorum", type=int, help="witnesses needed (default: all given)")
    parser.add_argument("--evidence", action="append", default=[], help="a file to find")
    parser.add_argument("--membership", action="append", default=[], help="a membership id")
    args = parser.parse_args()
    try:
        with open(args.bundle, encoding="utf-8") as file:
            bundle = json.load(file)
        if bundle.get("format") == "mutualaid-proof-bundle/v1":
            fields = ("leaf_index", "leaf_data", "inclusion_proof")
            bundle["entries"] = [{field: bundle[field] for field in fields}]
        elif bundle.get("format") != "mutualaid-subject-bundle/v1":
            raise Failed(f"unknown bundle format {bundle.get('format')!r}")
        if args.log_key is None:
            print("warning: no --log-key: using the keys in the bundle", file=sys.stderr)
            args.log_key, args.witness_key = bundle["log_key"], bundle["witness_keys"]
            args.quorum = bundle["quorum"] if args.quorum is None else args.quorum
        log_key = parse_key(args.log_key, 0x01)
        witnesses = [parse_key(key, 0x04) for key in args.witness_key]
        quorum = len(witnesses) if args.quorum is None else args.quorum
    except (OSError, ValueError, KeyError, Failed) as error:
        print(f"cannot read the bundle or a key: {error!r}", file=sys.stderr)
        return 2

    def check(name, step):
        try:
            detail = step()
        except (Failed, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            print(f"FAILED  {name}: {error}")
            return False
        print(f"ok      {name}: {detail}")
        return True

    state = {}

    def signatures():
        text, signers = open_note(bundle["checkpoint"], [log_key, *witnesses])
        if log_key not in signers:
            raise Failed(f"checkpoint is not signed by the log key {log_key['name']!r}")
        origin, size, root = parse_checkpoint(text)
        if origin != log_key["name"]:
            raise Failed(f"checkpoint origin {origin!r} is not the log {log_key['name']!r}")
        if bundle["origin"] != origin:
            raise Failed(f"bundle origin {bundle['origin']!r} is not the checkpoint's {origin!r}")
        cosigners = {key["public"] for key in signers if key["type"] == 0x04}
        if len(cosigners) < quorum:
            raise Failed(f"cosigned by {len(cosigners)} known witnesses, quorum is {quorum}")
        state.update(size=size, root=root)
        return f"size {size}, cosigned by {len(cosigners)} witnesses (quorum {quorum})"

    if not check("checkpoint signatures", signatures):
        return 1
    size, root = state["size"], state["root"]
    results, included = [], []
    for entry in bundle["entries"]:

        def inclusion(entry=entry):
            leaf = b64(entry["leaf_data"])
            proof = [b64(h) for h in entry["inclusion_proof"]]
            verify_inclusion(entry["leaf_index"], size, leaf, proof, root)
            try:
                included.append(json.loads(leaf))
            except ValueError:
                return f"{len(leaf)} bytes, not a JSON leaf"
            ids = str(included[-1].get("membership_ids", "")).split(",")
            if len(ids) > 6:  # a batch of up to 4,000 memberships: not all on one line
                return leaf.decode("utf-8").replace(
                    ",".join(ids), f"{','.join(ids[:3])},…,{ids[-1]} ({len(ids)} ids)"
                )
            return leaf.decode("utf-8")

        results.append(check(f"leaf {entry['leaf_index']} inclusion", inclusion))

    if bundle.get("older_checkpoint") is not None:

        def consistency():
            text, signers = open_note(bundle["older_checkpoint"], [log_key])
            if not signers:
                raise Failed("older checkpoint is not signed by the log key")
            origin, old_size, old_root = parse_checkpoint(text)
            if origin != log_key["name"]:
                raise Failed(f"older checkpoint is for the log {origin!r}")
            proof = [b64(h) for h in bundle["consistency_proof"]]
            verify_consistency(old_size, size, old_root, root, proof)
            return f"size {size} extends size {old_size}"

        results.append(check("consistency with older checkpoint", consistency))

    for path in args.evidence:

        def evidence(path=path):
            with open(path, "rb") as file:
                digest = hashlib.sha256(file.read()).hexdigest()
            hashes = {leaf.get("sha256") for leaf in included}
            hashes |= {leaf.get("evidence_sha256") for leaf in included}
            if digest not in hashes:
                raise Failed(f"SHA-256 {digest} is in no included leaf")
            return f"SHA-256 {digest} is in an included leaf"

        results.append(check(f"evidence {path}", evidence))

    for membership in args.membership:

        def named(membership=membership):
            for leaf in included:
                listed = str(leaf.get("membership_ids", "")).split(",")
                if leaf.get("membership_ref") == f"m-{membership}" or membership in listed:
                    return f"{leaf['event']} at {leaf['occurred_at']}"
            raise Failed("in no included leaf")

        results.append(check(f"membership {membership}", named))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
