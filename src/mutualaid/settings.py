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
    secret_key: str = DEMO_SECRET_KEY
    demo: bool = False
    time_zone: str = "Asia/Shanghai"
    data_dir: Path = Path("var")
    log_json: bool = False
    log_level: str = "INFO"
    #: Dotted path "module:factory" of a credit/risk check (see services/credit_checks.py).
    credit_check: str | None = None
    token_ttl_hours: int = Field(default=24 * 30, ge=1)
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

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.secret_key == DEMO_SECRET_KEY and not self.demo:
            raise InsecureSettings(
                "MUTUALAID_SECRET_KEY is the demo key; set a secret of your own "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`) "
                "or set MUTUALAID_DEMO=1 for a demo"
            )
        if len(self.secret_key) < 32:
            raise InsecureSettings("MUTUALAID_SECRET_KEY must be at least 32 characters")
        weakness = None if self.secret_key == DEMO_SECRET_KEY else secret_weakness(self.secret_key)
        if weakness:
            raise InsecureSettings(
                f"weak_secret_key: MUTUALAID_SECRET_KEY is guessable: {weakness}; generate one "
                "with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return self

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
