"""The risk scorer, vectorised: it takes the plan's recent claims and their evidence as NumPy
columns and answers every claim at once, so a batch of thousands is scored in milliseconds; the
lookups that let the database score one claim from its neighbours; the links between claims.

Dates enter as day ordinals (`date.toordinal()`); strings (hospital, doctor, hashed contacts) enter
as integer codes (`factorize`), -1 where the claim gave none. The signals and their thresholds are
in `risk.py`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from mutualaid.domain.risk import CODES, DEFAULT_PARAMS, SIGNALS, RiskParams, SignalCode, explain

Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]
Floats = NDArray[np.float64]

#: The "no document date" ordinal: later than any real date, so it never precedes a joining date.
NO_DATE = 10**7


_COLUMN = {code: i for i, code in enumerate(CODES)}


def age_band(age: Ints) -> Ints:
    """Under 20, 20-29, 30-39, 40-49, 50-59, 60+ as 0..5."""
    return np.clip((age - 10) // 10, 0, 5).astype(np.int64)


def factorize(values: Sequence[Hashable | None]) -> Ints:
    """Integer codes for values (equal values, equal codes); None becomes -1."""
    seen: dict[Hashable, int] = {}
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        out[i] = -1 if value is None else seen.setdefault(value, len(seen))
    return out


@dataclass(frozen=True, slots=True)
class ClaimColumns:
    """One row per claim; every array has the same length."""

    person: Ints
    account: Ints
    joined: Ints
    covered_from: Ints
    diagnosed: Ints
    reported: Ints
    accident: Bools
    illness: Ints
    age: Ints
    province: Ints
    hospital: Ints
    doctor: Ints
    phone: Ints
    payee: Ints
    address: Ints
    device: Ints
    #: The earliest date on the claim's medical documents, NO_DATE when none is dated.
    earliest_document: Ints

    def __len__(self) -> int:
        return int(self.person.shape[0])


@dataclass(frozen=True, slots=True)
class EvidenceColumns:
    """One row per evidence file: the claim it belongs to (row in ClaimColumns), its SHA-256 code
    and its 64-bit image difference hash (has_phash False for documents that are not images)."""

    claim: Ints
    sha: Ints
    phash: NDArray[np.uint64]
    has_phash: Bools

    @staticmethod
    def empty() -> EvidenceColumns:
        none = np.zeros(0, dtype=np.int64)
        return EvidenceColumns(none, none, np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool))


@dataclass(frozen=True, slots=True)
class RiskResult:
    """`fired[i, s]`: signal CODES[s] fired on claim i; `first`/`second` its measured values
    (e.g. days, counts, expected counts) for the explanation; `score` the capped sum of weights."""

    fired: Bools
    first: Floats
    second: Floats
    score: Ints
    weights: Ints = field(repr=False)

    def signals_of(self, i: int) -> list[FiredSignal]:
        return [
            FiredSignal(
                CODES[s], int(self.weights[s]), float(self.first[i, s]), float(self.second[i, s])
            )
            for s in np.flatnonzero(self.fired[i])
        ]


@dataclass(frozen=True, slots=True)
class FiredSignal:
    code: SignalCode
    weight: int
    first: float
    second: float

    def explain(self) -> tuple[str, str]:
        return explain(self.code, self.first, self.second)


def weights_vector(weights: Mapping[SignalCode, int] | None = None) -> Ints:
    given = weights or {}
    return np.array([given.get(s.code, s.weight) for s in SIGNALS], dtype=np.int64)


# --- the scorer -------------------------------------------------------------------------------------


class _Put(Protocol):
    def __call__(
        self,
        code: SignalCode,
        mask: Bools,
        a: NDArray[np.generic],
        b: NDArray[np.generic] | None = None,
    ) -> None: ...


_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Bits that differ between 64-bit hashes (broadcasting a against b)."""
    x = np.bitwise_xor(a, b)
    if hasattr(np, "bitwise_count"):  # NumPy >= 2
        counted: NDArray[np.uint8] = np.bitwise_count(x)
    else:
        counted = _BITS[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)
    return counted


def score_claims(
    claims: ClaimColumns,
    evidence: EvidenceColumns,
    params: RiskParams = DEFAULT_PARAMS,
    targets: Ints | None = None,
    counts: WindowCounts | None = None,
) -> RiskResult:
    """Every signal for every claim, each against the claims given that were reported from
    `params.lookback_days` before it on (its window; later claims included), weighted by
    `params.weights` (the plan's) over the signals' defaults.

    The near-duplicate image search compares each image with every other (exact, O(images²));
    given `targets` (rows), it runs for those claims only and the other rows' near-duplicate
    column is left unset: what a claim's filing needs, at O(its images x all images).

    `counts` (default: counted from the rows given, `window_counts`) are the statistical signals'
    counts; a caller that gives only a claim's neighbours (the rows sharing a key, a file or a
    close image with the targets) counts them in the database instead, and reads the target rows
    of the result only: they are then exactly what scoring the whole plan gives them."""
    n = len(claims)
    fired = np.zeros((n, len(CODES)), dtype=bool)
    first = np.zeros((n, len(CODES)), dtype=np.float64)
    second = np.zeros((n, len(CODES)), dtype=np.float64)

    def put(
        code: SignalCode, mask: Bools, a: NDArray[np.generic], b: NDArray[np.generic] | None = None
    ) -> None:
        col = _COLUMN[code]
        fired[:, col] = mask
        first[:, col] = np.where(mask, a, 0)
        if b is not None:
            second[:, col] = np.where(mask, b, 0)

    if n:
        counts = counts or window_counts(claims, params)
        since = claims.reported - params.lookback_days  # each claim's window starts here
        _timeline(claims, params, put)
        for code, key in (
            (SignalCode.SHARED_PHONE, claims.phone),
            (SignalCode.SHARED_PAYEE, claims.payee),
            (SignalCode.SHARED_ADDRESS, claims.address),
            (SignalCode.SHARED_DEVICE, claims.device),
        ):
            others = _other_groups(key, claims.account, claims.reported, since)
            put(code, others > 0, others)
        for code, key, recent, prior in (
            (
                SignalCode.FREQUENT_HOSPITAL,
                claims.hospital,
                counts.hospital_recent,
                counts.hospital_prior,
            ),
            (SignalCode.FREQUENT_DOCTOR, claims.doctor, counts.doctor_recent, counts.doctor_prior),
        ):
            expected, mask = _frequency(key >= 0, recent, prior, claims.reported, counts, params)
            put(code, mask, recent, expected)
        expected, mask = _outlier_cells(counts, params)
        put(SignalCode.OUTLIER_CELL, mask, counts.cell, expected)
        persons = _other_persons_per_claim(evidence, claims, since)
        put(SignalCode.SAME_FILE, persons > 0, persons)
        distance = _nearest_image(evidence, claims, since, targets)
        put(SignalCode.NEAR_DUPLICATE_IMAGE, distance <= params.near_duplicate_bits, distance)
    w = weights_vector(dict(params.weights))
    score = np.minimum(fired.astype(np.int64) @ w, 100)
    return RiskResult(fired, first, second, score, w)


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Per claim row, the counts behind the statistical signals, each over the claim's own
    windows (what an index answers for one claim with a COUNT):

    * `hospital_recent`/`doctor_recent`: claims naming the key reported in (r - recent, r + recent],
      `*_prior`: in (r - recent - history, r - recent], r the claim's report day;
    * `cell`: claims of the same illness, age band and province in (r - outlier, r + outlier],
      `illness_band`: the same illness and age band in any province, same days;
    * `province`: claims of the claim's province reported from r - lookback on, `total`: all of them;
    * `first_day`/`last_day`: the plan's first and last report days (how much history it has)."""

    hospital_recent: Ints
    hospital_prior: Ints
    doctor_recent: Ints
    doctor_prior: Ints
    cell: Ints
    illness_band: Ints
    province: Ints
    total: Ints
    first_day: int
    last_day: int


def window_counts(
    claims: ClaimColumns, params: RiskParams = DEFAULT_PARAMS, first_day: int | None = None
) -> WindowCounts:
    """The counts of `WindowCounts` over the rows given (`first_day` defaults to the earliest)."""
    day = claims.reported
    recent_lo, recent_hi = day - params.recent_days, day + params.recent_days
    prior_lo = recent_lo - params.history_days

    def frequency(key: Ints) -> tuple[Ints, Ints]:
        safe = np.where(key >= 0, key, 0)
        return (
            _window_counts(safe, day, recent_lo, recent_hi),
            _window_counts(safe, day, prior_lo, recent_lo),
        )

    hospital_recent, hospital_prior = frequency(claims.hospital)
    doctor_recent, doctor_prior = frequency(claims.doctor)
    provinces = int(claims.province.max()) + 1
    illness_band = claims.illness * 6 + age_band(claims.age)
    lo, hi = day - params.outlier_days, day + params.outlier_days
    since, end = day - params.lookback_days - 1, np.full_like(day, _SPAN - 1)
    return WindowCounts(
        hospital_recent,
        hospital_prior,
        doctor_recent,
        doctor_prior,
        cell=_window_counts(illness_band * provinces + claims.province, day, lo, hi),
        illness_band=_window_counts(illness_band, day, lo, hi),
        province=_window_counts(claims.province, day, since, end),
        total=_window_counts(np.zeros_like(day), day, since, end),
        first_day=int(day.min()) if first_day is None else first_day,
        last_day=int(day.max()),
    )


def _timeline(claims: ClaimColumns, params: RiskParams, put: _Put) -> None:
    after_waiting = claims.diagnosed - claims.covered_from
    put(
        SignalCode.SOON_AFTER_WAITING,
        ~claims.accident & (after_waiting >= 0) & (after_waiting < params.soon_after_waiting_days),
        after_waiting + 1,
    )
    after_joining = claims.diagnosed - claims.joined
    put(SignalCode.DIAGNOSIS_NEAR_JOINING, after_joining <= params.near_joining_days, after_joining)
    before = claims.joined - claims.earliest_document
    put(
        SignalCode.RECORDS_BEFORE_JOINING,
        (before > 0) & (before <= params.declaration_lookback_days),
        before,
    )


def _other_groups(key: Ints, group: Ints, day: Ints, since: Ints) -> Ints:
    """For each row: how many other groups (accounts) have a row with its key reported on or after
    its `since` day; 0 where the key is missing."""
    out = np.zeros(key.shape[0], dtype=np.int64)
    valid = key >= 0
    if not valid.any():
        return out
    k, d = key[valid], day[valid]
    _, g = np.unique(group[valid], return_inverse=True)
    width = int(g.max()) + 1
    pair = k * width + g
    order = np.lexsort((d, pair))
    pair, d = pair[order], d[order]
    latest = np.r_[pair[1:] != pair[:-1], True]  # each (key, group) pair's latest day
    out[valid] = (
        _count_in(pair[latest] // width, d[latest], k, since[valid] - 1, np.full_like(k, _SPAN - 1))
        - 1
    )
    return out


def _other_persons_per_claim(evidence: EvidenceColumns, claims: ClaimColumns, since: Ints) -> Ints:
    """For each claim: the most other persons any of its files is also attached for (in its
    window)."""
    out = np.zeros(len(claims), dtype=np.int64)
    if evidence.sha.shape[0]:
        owner = evidence.claim
        others = _other_groups(
            evidence.sha, claims.person[owner], claims.reported[owner], since[owner]
        )
        np.maximum.at(out, owner, others)
    return out


def _nearest_image(
    evidence: EvidenceColumns,
    claims: ClaimColumns,
    since: Ints,
    targets: Ints | None,
    chunk: int = 512,
) -> Ints:
    """For each claim: the smallest Hamming distance between one of its images and a different
    file of a different person in its window (65 where there is none). Brute force in chunks:
    exact, one XOR and popcount per pair."""
    out = np.full(len(claims), 65, dtype=np.int64)
    rows = np.flatnonzero(evidence.has_phash)
    if rows.shape[0] < 2:
        return out
    hashes = evidence.phash[rows]
    owner_claims = evidence.claim[rows]
    owners = claims.person[owner_claims]
    days = claims.reported[owner_claims]
    shas = evidence.sha[rows]
    queries = (
        np.arange(rows.shape[0])
        if targets is None
        else np.flatnonzero(np.isin(owner_claims, targets))
    )
    for start in range(0, queries.shape[0], chunk):
        q = queries[start : start + chunk]
        distance = hamming(hashes[q, None], hashes[None, :])
        distance[
            (owners[q, None] == owners[None, :])
            | (shas[q, None] == shas[None, :])
            | (days[None, :] < since[owner_claims[q], None])
        ] = 65
        np.minimum.at(out, owner_claims[q], distance.min(axis=1))
    return out


_SPAN = 1 << 22  # room for day ordinals (~740,000) in a combined (key, day) sort key


def _count_in(keys: Ints, days: Ints, key: Ints, lo: Ints, hi: Ints) -> Ints:
    """For each query (key, lo, hi): how many of (keys, days) have that key and lo < day <= hi."""
    combined = np.sort(keys * _SPAN + days)
    return (
        np.searchsorted(combined, key * _SPAN + hi, side="right")
        - np.searchsorted(combined, key * _SPAN + lo, side="right")
    ).astype(np.int64)


def _window_counts(key: Ints, day: Ints, lo: Ints, hi: Ints) -> Ints:
    """For each row: how many rows with the same key have lo < day <= hi (key >= 0 only)."""
    return _count_in(key, day, key, lo, hi)


def _frequency(
    valid: Bools,
    recent: Ints,
    prior: Ints,
    reported: Ints,
    counts: WindowCounts,
    params: RiskParams,
) -> tuple[Floats, Bools]:
    """Claims naming the key within the recent window around each claim (up to `recent_days`
    before and, when rescoring, after it) against the key's own rate in the history before."""
    window_start = reported - params.recent_days
    history = np.maximum(np.minimum(params.history_days, window_start - counts.first_day + 1), 1)
    span = np.minimum(2 * params.recent_days, counts.last_day - reported + params.recent_days)
    expected = prior * span / history
    # Of the key's claims in history + window, a share span/(span+history) falls in the window if
    # the rate did not change; z says how far above that share the window's count is.
    total = recent + prior
    share = span / (span + history)
    z = (recent - total * share) / np.sqrt(np.maximum(total * share * (1 - share), 1e-9))
    mask = (
        valid
        & (history >= params.min_history_days)
        & (recent >= params.frequency_min_count)
        & (z >= params.frequency_z)
    )
    return expected, mask


def _outlier_cells(counts: WindowCounts, params: RiskParams) -> tuple[Floats, Bools]:
    """Claims of the same illness, age band and province around each claim, against the same
    illness and age band in all provinces times the province's share of the claims in the claim's
    window."""
    expected = counts.illness_band * (counts.province / np.maximum(counts.total, 1))
    bound = np.maximum(
        params.outlier_min_count, params.outlier_factor * expected + params.outlier_slack
    )
    return expected, counts.cell >= bound


# --- lookups for one claim (what the database probes instead of loading the plan) ---------------

#: An image hash is split into BANDS bands of 16 bits, stored as indexed integers: two hashes within
#: d bits differ in at most d // BANDS bits of some band (pigeonhole), so probing each band with
#: the values within that distance of the claim's own finds every near-duplicate candidate.
BANDS = 4
BAND_BITS = 64 // BANDS


def phash_band(phash: int, band: int) -> int:
    """Band `band` (0 = the most significant 16 bits) of a 64-bit image hash."""
    return (phash >> (64 - BAND_BITS * (band + 1))) & ((1 << BAND_BITS) - 1)


def band_probes(phash: int, band: int, params: RiskParams = DEFAULT_PARAMS) -> list[int]:
    """The band values within `near_duplicate_bits // BANDS` bits of this hash's band."""
    value = phash_band(phash, band)
    radius = params.near_duplicate_bits // BANDS
    return [
        value ^ sum(1 << b for b in flips)
        for r in range(radius + 1)
        for flips in combinations(range(BAND_BITS), r)
    ]


def age_band_bounds(band: int) -> tuple[int, int]:
    """The ages (inclusive) of an `age_band`: 0..19, 20..29, ..., 60..200."""
    return (0 if band == 0 else 10 * band + 10, 200 if band == 5 else 10 * band + 19)


# --- links between claims (the graph view) ----------------------------------------------------------


class LinkKind(StrEnum):
    PHONE = "phone"
    PAYEE = "payee"
    ADDRESS = "address"
    DEVICE = "device"
    DOCTOR = "doctor"
    SAME_FILE = "same_file"
    SIMILAR_IMAGE = "similar_image"


def links_of(
    claims: ClaimColumns, evidence: EvidenceColumns, i: int, params: RiskParams = DEFAULT_PARAMS
) -> dict[int, set[LinkKind]]:
    """The other claims that share something with claim i, and what they share."""
    found: dict[int, set[LinkKind]] = {}

    def add(rows: NDArray[np.intp], kind: LinkKind) -> None:
        for j in rows.tolist():
            if j != i:
                found.setdefault(int(j), set()).add(kind)

    for kind, key in (
        (LinkKind.PHONE, claims.phone),
        (LinkKind.PAYEE, claims.payee),
        (LinkKind.ADDRESS, claims.address),
        (LinkKind.DEVICE, claims.device),
        (LinkKind.DOCTOR, claims.doctor),
    ):
        if key[i] >= 0:
            add(np.flatnonzero(key == key[i]), kind)
    own = evidence.claim == i
    if own.any():
        add(evidence.claim[np.isin(evidence.sha, evidence.sha[own])], LinkKind.SAME_FILE)
        mine = evidence.phash[own & evidence.has_phash]
        if mine.shape[0]:
            distance = hamming(mine[:, None], evidence.phash[None, :]).min(axis=0)
            close = (
                evidence.has_phash
                & (distance <= params.near_duplicate_bits)
                & ~np.isin(evidence.sha, evidence.sha[own])
            )
            add(evidence.claim[close], LinkKind.SIMILAR_IMAGE)
    return found
