"""Alipay open-platform signatures (RSA2: SHA256withRSA, PKCS#1 v1.5, base64).

The published rules, as implemented here:
- a request: every parameter except ``sign`` (``sign_type`` included), parameters with an empty
  value left out, sorted by key (ASCII), joined as ``k=v&k=v`` with the raw (not URL-encoded)
  values, signed with the app's private key;
- an asynchronous notification: every parameter received except ``sign`` and ``sign_type``, empty
  values left out, sorted and joined the same way, verified with the gateway's public key;
- a synchronous response: the exact JSON text of the ``<method with _>_response`` member, as it
  stands in the response body, verified with the gateway's public key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

REQUEST_EXCLUDED = frozenset({"sign"})
NOTIFICATION_EXCLUDED = frozenset({"sign", "sign_type"})


def signing_string(params: Mapping[str, str], excluded: Collection[str]) -> str:
    return "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if key not in excluded and value != ""
    )


def _pem(text: str, kind: str) -> bytes:
    """Alipay's key tool writes bare base64 (PKCS#8 private key, X.509 public key): wrap it."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n".encode()


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(_pem(text, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is needed for RSA2")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_pem(text, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("an RSA public key is needed for RSA2")
    return key


def rsa2_sign(content: str, key: rsa.RSAPrivateKey) -> str:
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(content: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return True


def sign_request(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The parameters with their ``sign`` added."""
    return {**params, "sign": rsa2_sign(signing_string(params, REQUEST_EXCLUDED), key)}


def verify_request(params: Mapping[str, str], key: rsa.RSAPublicKey) -> bool:
    return rsa2_verify(signing_string(params, REQUEST_EXCLUDED), params.get("sign", ""), key)


def sign_notification(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    return {
        **params,
        "sign_type": "RSA2",
        "sign": rsa2_sign(signing_string(params, NOTIFICATION_EXCLUDED), key),
    }


def verify_notification(params: Mapping[str, str], key: rsa.RSAPublicKey) -> bool:
    if params.get("sign_type", "RSA2") != "RSA2":
        return False
    return rsa2_verify(signing_string(params, NOTIFICATION_EXCLUDED), params.get("sign", ""), key)


def response_node(body: str, method: str) -> str | None:
    """The exact text of the response member that the gateway signed (None: not there)."""
    name = f'"{method.replace(".", "_")}_response"'
    at = body.find(name)
    if at < 0:
        return None
    colon = body.find(":", at + len(name))
    start = colon + 1
    while start < len(body) and body[start] in " \t\r\n":
        start += 1
    try:
        _, end = json.JSONDecoder().raw_decode(body, start)
    except json.JSONDecodeError:
        return None
    return body[start:end]


def signed_response(method: str, node: Mapping[str, object], key: rsa.RSAPrivateKey) -> str:
    """A response body as the gateway writes it (the local test gateway)."""
    text = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
    name = method.replace(".", "_") + "_response"
    return f'{{"{name}":{text},"sign":"{rsa2_sign(text, key)}"}}'
