"""Settings from MUTUALAID_* environment variables."""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from functools import cached_property
from itertools import pairwise
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SECRET_KEY = "demo-secret-key-do-not-use-in-production"
#: `secrets.token_urlsafe(48)` scores about 350 bits on this estimate; a typed phrase of 32
#: varied characters about 150. Below 128 bits the key is guessable.
MIN_SECRET_BITS = 128
MIN_SECRET_DISTINCT = 10


def secret_weakness(secret: str) -> str | None:
    """Why a secret is guessable despite its length, or None.

    An estimate, not a proof: the characters' frequency entropy times the length, with characters
    that merely continue a run (the same character again, or the next/previous one: 'aaaa',
    '0123', 'abcd') not counted, since a guesser tries runs first.
    """
    counts = Counter(secret)
    if len(counts) < MIN_SECRET_DISTINCT:
        return f"it has only {len(counts)} distinct characters (at least {MIN_SECRET_DISTINCT})"
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    runs = sum(abs(ord(b) - ord(a)) <= 1 for a, b in pairwise(secret))
    bits = per_char * (len(secret) - runs)
    if bits < MIN_SECRET_BITS:
        return f"it holds about {bits:.0f} bits of entropy (at least {MIN_SECRET_BITS})"
    return None


class InsecureSettings(RuntimeError):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUTUALAID_", extra="ignore")

    database_url: str = "sqlite:///var/mutualaid.db"
    #: A streaming replica of the PostgreSQL database for reports, public pages, statements and
    #: proofs (docs/operations.md, "Read replica"). Unset: the primary answers every read.
    read_database_url: str | None = None
    #: The single secret of before key rotation (docs/operations.md "Key rotation"): key version 1.
    secret_key: str = DEMO_SECRET_KEY
    #: The versioned key ring: "3:secret,2:secret" (version:secret, comma-separated); the highest
    #: version is the current one, the others are only read with. MUTUALAID_SECRET_KEY, when set,
    #: is accepted as version 1 beside it.
    secret_keys: SecretStr | None = None
    #: The key ring in a file: one "version:secret" per line (# comments allowed).
    secret_keys_file: Path | None = None
    demo: bool = False
    time_zone: str = "Asia/Shanghai"
    data_dir: Path = Path("var")
    log_json: bool = False
    log_level: str = "INFO"
    #: Dotted path "module:factory" of a credit/risk check (see services/credit_checks.py).
    credit_check: str | None = None
    token_ttl_hours: int = Field(default=24 * 30, ge=1)
    #: Threads (each with its own database connection) that scan a plan's members together when
    #: a period closes; about the cores the database can use.
    scan_threads: int = Field(default=2, ge=1, le=32)
    #: The transparency log's signer key (`mutualaid log keygen`); generated under data_dir in demo mode.
    log_key_file: Path | None = None
    log_origin: str = "mutualaid.example/log"
    #: Witnesses as comma-separated "name=verifierkey@url"; a checkpoint needs `witness_quorum` of them.
    witnesses: str = ""
    witness_quorum: int = Field(default=0, ge=0)
    #: Mutating requests (POST, PUT, PATCH, DELETE) allowed per window per bearer token / web
    #: session and per client address, across all workers; 0 switches a limit off.
    rate_limit_window_s: int = Field(default=60, ge=1)
    rate_limit_per_token: int = Field(default=600, ge=0)
    rate_limit_per_address: int = Field(default=3000, ge=0)
    #: Registrations per hour per phone number and per client address; 0 switches a limit off.
    rate_limit_registrations_per_phone: int = Field(default=5, ge=0)
    rate_limit_registrations_per_address: int = Field(default=20, ge=0)
    #: Staff sign-in through the operator's OpenID Connect provider (off unless an issuer is set).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    #: The id_token claim naming the staff account: "phone_number" (matched to the account phone).
    oidc_claim: str = "phone_number"
    #: An `amr` value (e.g. "mfa") or `acr` value that proves the IdP enforced MFA: then OIDC
    #: counts as both factors. Empty: staff still give their TOTP code after the IdP.
    oidc_mfa_value: str = ""
    #: Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    #: addresses and networks ("127.0.0.1,10.0.0.0/8"), or "*". Empty: none (docs/operations.md).
    forwarded_allow_ips: str = ""
    #: How long a server process reuses the database figures of /metrics (members and claims by
    #: state, pending notifications, log size), so scrapes never cost more than one query each.
    metrics_cache_s: int = Field(default=30, ge=0)
    #: Alipay open platform (plans with `[payments] provider = "alipay"`, docs/payments.md): the
    #: app id, the app's private key and Alipay's public key (PEM or Alipay's bare base64, files
    #: readable by the service only), the gateway, and this site's public address, to which
    #: Alipay sends its notifications (<public_url>/api/v1/payments/alipay/notify).
    alipay_app_id: str | None = None
    alipay_private_key_file: Path | None = None
    alipay_public_key_file: Path | None = None
    alipay_gateway_url: str = "https://openapi.alipay.com/gateway.do"
    #: Apprise notification URLs per channel (https://appriseit.com); `{to}` in one is replaced
    #: by the recipient's address. Unset: that channel's messages only go to the log.
    notify_email_url: SecretStr | None = None
    notify_sms_url: SecretStr | None = None
    #: The "app" channel: a webhook to the operator's own app (push), e.g. "jsons://push.example.org/{to}".
    notify_webhook_url: SecretStr | None = None
    #: The site's address, for links in messages ("pay now", "see your claim").
    public_url: str = "http://localhost:8000"

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for entry in value.split(","):
            if entry.strip() not in ("", "*"):
                ipaddress.ip_network(entry.strip(), strict=False)  # a ValueError names the typo
        return value

    @field_validator("read_database_url")
    @classmethod
    def _replica_is_postgres(cls, value: str | None) -> str | None:
        if value and not value.startswith("postgres"):
            raise ValueError("a read replica is a PostgreSQL streaming replica (postgresql://...)")
        return value or None

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        self.key_ring_secrets  # parses the key ring and checks every key of it  # noqa: B018
        return self

    @cached_property
    def key_ring_secrets(self) -> dict[int, str]:
        """Every live key version's secret; the highest version is the current one.

        From MUTUALAID_SECRET_KEYS or MUTUALAID_SECRET_KEYS_FILE, with MUTUALAID_SECRET_KEY (when
        set, or when no ring is given) as version 1. Each key passes the demo/length/entropy checks.
        """
        ring: dict[int, str] = {}
        sources: list[tuple[str, str]] = []
        if self.secret_keys is not None and self.secret_keys.get_secret_value().strip():
            sources.append(("MUTUALAID_SECRET_KEYS", self.secret_keys.get_secret_value()))
        if self.secret_keys_file is not None:
            try:
                text = self.secret_keys_file.read_text(encoding="utf-8")
            except OSError as error:
                raise InsecureSettings(
                    f"key_ring_unreadable: MUTUALAID_SECRET_KEYS_FILE {self.secret_keys_file}: "
                    f"{error.strerror or error}"
                ) from None
            lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
            sources.append(("MUTUALAID_SECRET_KEYS_FILE", ",".join(line for line in lines if line)))
        for where, text in sources:
            for version, secret in _parse_ring(text, where):
                if ring.get(version, secret) != secret:
                    raise InsecureSettings(
                        f"key_version_conflict: {where}: key version {version} is given twice "
                        "with different secrets"
                    )
                _check_secret(secret, f"{where} version {version}", demo=self.demo)
                ring[version] = secret
        if not ring or "secret_key" in self.model_fields_set:
            if ring.get(1, self.secret_key) != self.secret_key:
                raise InsecureSettings(
                    "key_version_conflict: MUTUALAID_SECRET_KEY is key version 1, but the key "
                    "ring gives version 1 another secret"
                )
            _check_secret(self.secret_key, "MUTUALAID_SECRET_KEY", demo=self.demo)
            ring[1] = self.secret_key
        return dict(sorted(ring.items()))

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _parse_ring(text: str, where: str) -> list[tuple[int, str]]:
    entries: list[tuple[int, str]] = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        version_text, colon, secret = entry.partition(":")
        if not colon or not version_text.strip().isdigit() or int(version_text) < 1:
            raise InsecureSettings(
                f"key_ring_malformed: {where}: each key is 'version:secret' with a version of "
                "1 or more (e.g. '2:newsecret,1:oldsecret')"
            )
        entries.append((int(version_text), secret.strip()))
    return entries


def _check_secret(secret: str, name: str, *, demo: bool) -> None:
    """The demo key outside demo mode, a short key or a guessable one are refused."""
    if secret == DEMO_SECRET_KEY:
        if demo:
            return
        raise InsecureSettings(
            f"{name} is the demo key; set a secret of your own "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`) "
            "or set MUTUALAID_DEMO=1 for a demo"
        )
    if len(secret) < 32:
        raise InsecureSettings(f"{name} must be at least 32 characters")
    weakness = secret_weakness(secret)
    if weakness:
        raise InsecureSettings(
            f"weak_secret_key: {name} is guessable: {weakness}; generate one "
            "with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
