"""A generated claim population for the risk signals: honest claims, and planted fraud patterns
(one group per signal) mixed in. Used by the integration test (through the database) and by
benchmarks/bench_risk.py (as columns).

Honest claims: members joined at any time in the three years before; a non-accident illness is
diagnosed after the waiting period and reported within 60 days; hospitals follow a Zipf law (a few
large hospitals take most claims); 60% name one of the hospital's 30 doctors; contacts, payee
account, address and device belong to the family; a few families file for two relatives; a few
pairs of unrelated families share an address (neighbours: an innocent link). Evidence: an ID card
photo and a diagnosis certificate photo (random 64-bit image hashes) and a medical record dated
shortly before the diagnosis.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from sqlalchemy import insert, select

from mutualaid.db.models import Account, Claim, Evidence, Membership, Person, Plan
from mutualaid.domain.risk import ClaimLinks, SignalCode
from mutualaid.domain.risk_scores import NO_DATE, ClaimColumns, EvidenceColumns, factorize
from mutualaid.services.context import ServiceContext
from mutualaid.services.risk.risk import link_columns

END = date(2026, 2, 28)  # the last report day
START = END - timedelta(days=539)  # 18 months of claims: a year of history before the recent ones
PROVINCES = [
    "11",
    "12",
    "13",
    "14",
    "15",
    "21",
    "22",
    "23",
    "31",
    "32",
    "33",
    "34",
    "35",
    "36",
    "37",
    "41",
    "42",
    "43",
    "44",
    "45",
    "46",
    "50",
    "51",
    "52",
    "53",
    "54",
    "61",
    "62",
    "63",
    "64",
    "65",
]
ILLNESSES = [f"CI{i:02d}" for i in range(1, 21)]
RARE_ILLNESS = "CI20"


@dataclass
class Document:
    sha256: str
    phash: int | None
    document_on: date | None
    label: str


@dataclass
class GeneratedClaim:
    person: int
    account: int
    joined_on: date
    diagnosed_on: date
    reported_on: date
    accident: bool
    illness: str
    age: int
    province: str
    hospital: str
    doctor: str | None
    phone: str | None
    payee: str | None
    address: str | None
    device: str | None
    documents: list[Document] = field(default_factory=list)
    #: The pattern planted in this claim (None: honest).
    planted: SignalCode | None = None

    @property
    def covered_from(self) -> date:
        return self.joined_on + timedelta(days=91)


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.next_person = 0
        self.next_account = 0
        self.next_file = 0
        hospitals = 80
        weights = 1 / np.arange(1, hospitals + 1) ** 1.1
        self.hospital_weights = weights / weights.sum()
        province_weights = self.rng.uniform(0.5, 2.0, len(PROVINCES))
        self.province_weights = province_weights / province_weights.sum()
        illness_weights = 1 / np.arange(1, len(ILLNESSES) + 1) ** 1.3
        self.illness_weights = illness_weights / illness_weights.sum()

    def _day(self, lo: date, hi: date) -> date:
        return lo + timedelta(days=int(self.rng.integers(0, (hi - lo).days + 1)))

    def _file(self, label: str, *, image: bool = True, on: date | None = None) -> Document:
        self.next_file += 1
        sha = hashlib.sha256(f"file-{self.next_file}".encode()).hexdigest()
        phash = (
            int(self.rng.integers(0, 2**63)) * 2 + int(self.rng.integers(0, 2)) if image else None
        )
        return Document(sha, phash, on, label)

    def honest(
        self,
        *,
        reported_on: date | None = None,
        account: int | None = None,
        accident: bool | None = None,
    ) -> GeneratedClaim:
        rng = self.rng
        self.next_person += 1
        if account is None:
            self.next_account += 1
            account = self.next_account
        reported = reported_on or self._day(START, END)
        diagnosed = reported - timedelta(days=int(rng.integers(0, 61)))
        is_accident = bool(rng.random() < 0.05) if accident is None else accident
        earliest_join = date(2022, 1, 1)
        joined = self._day(earliest_join, diagnosed - timedelta(days=1 if is_accident else 91))
        hospital_index = int(rng.choice(len(self.hospital_weights), p=self.hospital_weights))
        family = f"family-{account}"
        claim = GeneratedClaim(
            person=self.next_person,
            account=account,
            joined_on=joined,
            diagnosed_on=diagnosed,
            reported_on=reported,
            accident=is_accident,
            illness=ILLNESSES[int(rng.choice(len(ILLNESSES), p=self.illness_weights))],
            age=int(rng.integers(18, 60)),
            province=PROVINCES[int(rng.choice(len(PROVINCES), p=self.province_weights))],
            hospital=f"Hospital {hospital_index}",
            doctor=f"Dr {hospital_index}-{int(rng.integers(0, 30))}"
            if rng.random() < 0.6
            else None,
            phone=f"{family}-phone" if rng.random() < 0.8 else None,
            payee=f"{family}-payee" if rng.random() < 0.9 else None,
            address=f"{family}-address" if rng.random() < 0.7 else None,
            device=f"{family}-device" if rng.random() < 0.6 else None,
        )
        claim.documents = [
            self._file("id card"),
            self._file("diagnosis certificate"),
            self._file(
                "medical record",
                image=False,
                on=diagnosed - timedelta(days=int(rng.integers(0, 31))),
            ),
        ]
        return claim

    def recent(self, days: int = 60) -> date:
        return self._day(END - timedelta(days=days - 1), END)


@dataclass
class Population:
    claims: list[GeneratedClaim]

    def columns(self) -> tuple[ClaimColumns, EvidenceColumns]:
        c = self.claims

        def ints(values: list[int]) -> np.ndarray:  # type: ignore[type-arg]
            return np.asarray(values, dtype=np.int64)

        earliest = [
            min((d.document_on.toordinal() for d in x.documents if d.document_on), default=NO_DATE)
            for x in c
        ]
        claims = ClaimColumns(
            person=ints([x.person for x in c]),
            account=ints([x.account for x in c]),
            joined=ints([x.joined_on.toordinal() for x in c]),
            covered_from=ints([x.covered_from.toordinal() for x in c]),
            diagnosed=ints([x.diagnosed_on.toordinal() for x in c]),
            reported=ints([x.reported_on.toordinal() for x in c]),
            accident=np.asarray([x.accident for x in c], dtype=bool),
            illness=factorize([x.illness for x in c]),
            age=ints([x.age for x in c]),
            province=factorize([x.province for x in c]),
            hospital=factorize([x.hospital for x in c]),
            doctor=factorize([x.doctor for x in c]),
            phone=factorize([x.phone for x in c]),
            payee=factorize([x.payee for x in c]),
            address=factorize([x.address for x in c]),
            device=factorize([x.device for x in c]),
            earliest_document=ints(earliest),
        )
        rows = [(i, d) for i, x in enumerate(c) for d in x.documents]
        evidence = EvidenceColumns(
            claim=ints([i for i, _ in rows]),
            sha=factorize([d.sha256 for _, d in rows]),
            phash=np.asarray([d.phash or 0 for _, d in rows], dtype=np.uint64),
            has_phash=np.asarray([d.phash is not None for _, d in rows], dtype=bool),
        )
        return claims, evidence

    def planted(self, code: SignalCode) -> np.ndarray:  # type: ignore[type-arg]
        return np.asarray([x.planted is code for x in self.claims], dtype=bool)

    def honest(self) -> np.ndarray:  # type: ignore[type-arg]
        return np.asarray([x.planted is None for x in self.claims], dtype=bool)


def generate(honest: int = 400, seed: int = 9, scale: int = 1) -> Population:
    """`honest` honest claims plus each planted pattern (`scale` groups of each)."""
    g = Generator(seed)
    claims = [g.honest() for _ in range(honest)]
    for _ in range(max(1, honest // 40)):  # families filing for two relatives: not a link
        first = claims[int(g.rng.integers(0, len(claims)))]
        claims.append(g.honest(account=first.account))
    for _ in range(max(1, honest // 100)):  # neighbours sharing an address: an innocent link
        a, b = g.honest(), g.honest()
        b.address = a.address = f"shared-building-{g.next_file}"
        claims += [a, b]

    def plant(code: SignalCode, claim: GeneratedClaim) -> GeneratedClaim:
        claim.planted = code
        claims.append(claim)
        return claim

    for _ in range(10 * scale):  # one certificate used for two patients
        source = plant(SignalCode.SAME_FILE, g.honest())
        copy = plant(SignalCode.SAME_FILE, g.honest())
        copy.documents[1] = source.documents[1]
    for _ in range(10 * scale):  # a re-saved or retouched copy of another patient's certificate
        source = plant(SignalCode.NEAR_DUPLICATE_IMAGE, g.honest())
        copy = plant(SignalCode.NEAR_DUPLICATE_IMAGE, g.honest())
        flips = g.rng.choice(64, size=int(g.rng.integers(1, 5)), replace=False)
        mask = int(sum(1 << int(b) for b in flips))
        assert source.documents[1].phash is not None
        copy.documents[1].phash = source.documents[1].phash ^ mask
    for _ in range(20 * scale):  # joined ill, waited out the waiting period
        claim = plant(SignalCode.SOON_AFTER_WAITING, g.honest(accident=False))
        claim.joined_on = claim.diagnosed_on - timedelta(days=91 + int(g.rng.integers(0, 25)))
    for _ in range(15 * scale):  # a known illness reported as an accident right after joining
        claim = plant(SignalCode.DIAGNOSIS_NEAR_JOINING, g.honest(accident=True))
        claim.joined_on = claim.diagnosed_on - timedelta(days=int(g.rng.integers(1, 28)))
        claim.documents[2].document_on = claim.diagnosed_on  # the "accident" day's record
    for _ in range(15 * scale):  # records of treatment before joining, declaration said "no"
        claim = plant(SignalCode.RECORDS_BEFORE_JOINING, g.honest(accident=False))
        claim.documents.append(
            g._file(
                "earlier record",
                image=False,
                on=claim.joined_on - timedelta(days=int(g.rng.integers(20, 700))),
            )
        )
    rings = (
        ("phone", SignalCode.SHARED_PHONE),
        ("payee", SignalCode.SHARED_PAYEE),
        ("address", SignalCode.SHARED_ADDRESS),
        ("device", SignalCode.SHARED_DEVICE),
    )
    for attribute, code in rings:  # one agent's phone/account/address/device for several families
        for ring in range(3 * scale):
            for _ in range(5):
                claim = plant(code, g.honest())
                setattr(claim, attribute, f"ring-{attribute}-{ring}")
    for clinic in range(scale):  # a small clinic suddenly certifying many claims
        for _ in range(10):
            claim = plant(SignalCode.FREQUENT_HOSPITAL, g.honest(reported_on=g.recent()))
            claim.hospital, claim.doctor = f"New Clinic {clinic}", None
    for doctor in range(scale):  # one doctor of a big hospital signing for a ring
        for _ in range(10):
            claim = plant(SignalCode.FREQUENT_DOCTOR, g.honest(reported_on=g.recent()))
            claim.hospital, claim.doctor = "Hospital 0", f"Dr ring-{doctor}"
    for cluster in range(scale):  # a rare illness, one age band, one province, all at once
        province = PROVINCES[(19 + cluster) % len(PROVINCES)]
        for _ in range(10):
            claim = plant(SignalCode.OUTLIER_CELL, g.honest(reported_on=g.recent(90)))
            claim.illness, claim.age, claim.province = (
                RARE_ILLNESS,
                30 + int(g.rng.integers(0, 10)),
                province,
            )
    order = g.rng.permutation(len(claims))
    return Population([claims[i] for i in order])


@dataclass(frozen=True)
class SignalQuality:
    code: SignalCode
    planted: int
    fired: int
    true_positives: int
    honest_fired: int
    honest: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.fired if self.fired else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.planted if self.planted else 1.0

    @property
    def honest_rate(self) -> float:
        return self.honest_fired / self.honest


def quality(population: Population, fired: dict[SignalCode, np.ndarray]) -> list[SignalQuality]:  # type: ignore[type-arg]
    honest = population.honest()
    out = []
    for code, mask in fired.items():
        truth = population.planted(code)
        out.append(
            SignalQuality(
                code,
                int(truth.sum()),
                int(mask.sum()),
                int((mask & truth).sum()),
                int((mask & honest).sum()),
                int(honest.sum()),
            )
        )
    return out


def table(rows: list[SignalQuality]) -> str:
    lines = [
        "| signal | planted | fired | true pos. | precision | recall | honest claims flagged |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `{q.code}` | {q.planted} | {q.fired} | {q.true_positives} | {q.precision:.2f} | "
        f"{q.recall:.2f} | {q.honest_fired}/{q.honest} ({100 * q.honest_rate:.1f}%) |"
        for q in rows
    ]
    return "\n".join(lines)


def insert_population(
    ctx: ServiceContext, population: Population, plan_code: str = "xhb-main"
) -> dict[int, int]:
    """The population as rows (set-based inserts): claim index -> claim id."""
    base = 100_000
    now = datetime(2026, 3, 1, 2, tzinfo=UTC)
    with ctx.sessions.begin() as session:
        plan_id = session.scalar(select(Plan.id).where(Plan.code == plan_code))
        accounts = sorted({c.account for c in population.claims})
        session.execute(
            insert(Account),
            [
                {"id": base + a, "phone": f"1{base + a:010d}", "role": "member", "created_at": now}
                for a in accounts
            ],
        )
        session.execute(
            insert(Person),
            [
                {
                    "id": base + c.person,
                    "account_id": base + c.account,
                    "relation": "self",
                    "identity_hash": f"{c.person:064x}",
                    "identity_ciphertext": b"-",
                    "name_ciphertext": b"-",
                    "name_masked": "张*华",
                    "birth_on": date(c.diagnosed_on.year - c.age, 1, 1),
                    "sex": "M",
                    "province_code": c.province,
                    "created_at": now,
                }
                for c in population.claims
            ],
        )
        session.execute(
            insert(Membership),
            [
                {
                    "id": base + i,
                    "plan_id": plan_id,
                    "plan_version": 1,
                    "person_id": base + c.person,
                    "payer_account_id": base + c.account,
                    "state": "covered",
                    "joined_at": datetime.combine(c.joined_on, time(2), UTC),
                    "joined_on": c.joined_on,
                    "waiting_ends_on": c.joined_on + timedelta(days=90),
                    "covered_from_on": c.covered_from,
                    "ages_out_on": date(2090, 1, 1),
                }
                for i, c in enumerate(population.claims)
            ],
        )
        session.execute(
            insert(Claim),
            [
                {
                    "id": base + i,
                    "ref": f"G{i:05d}",
                    "plan_id": plan_id,
                    "plan_version": 1,
                    "membership_id": base + i,
                    "person_id": base + c.person,
                    "claimant_account_id": base + c.account,
                    "illness_code": c.illness,
                    "tier": "severe",
                    "accident": c.accident,
                    "diagnosed_on": c.diagnosed_on,
                    "hospital": c.hospital,
                    "age_at_diagnosis": c.age,
                    "payout_fen": 30_000_000,
                    "state": "submitted",
                    "reported_at": datetime.combine(c.reported_on, time(2), UTC),
                    "reported_on": c.reported_on,
                    "updated_at": now,
                    "province_code": c.province,
                    **link_columns(
                        ctx.protector, ClaimLinks(c.phone, c.payee, c.address, c.device, c.doctor)
                    ),
                }
                for i, c in enumerate(population.claims)
            ],
        )
        session.execute(
            insert(Evidence),
            [
                {
                    "claim_id": base + i,
                    "sha256": d.sha256,
                    "size_bytes": 1000,
                    "media_type": "image/jpeg" if d.phash is not None else "application/pdf",
                    "label": d.label,
                    "purpose": "claim",
                    "uploaded_at": now,
                    "phash": f"{d.phash:016x}" if d.phash is not None else None,
                    "document_on": d.document_on,
                }
                for i, c in enumerate(population.claims)
                for d in c.documents
            ],
        )
    return {i: base + i for i in range(len(population.claims))}
