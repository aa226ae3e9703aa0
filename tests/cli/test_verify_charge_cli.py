"""`mutualaid verify charge` as an outsider runs it on a saved charge proof: one line per link,
exit 0 only when every link holds, and each forgery of issue 14 named by its link and message."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.builders.charge_proofs import LOG_KEY, WITNESSES, forgeries, honest
from typer.testing import CliRunner, Result

from mutualaid.cli.app import app
from mutualaid.transparency.charge_proofs import LINKS

runner = CliRunner()
KEYS = [
    "--log-key",
    LOG_KEY.verifier().encode(),
    *[arg for w in WITNESSES for arg in ("--witness-key", w.verifier().encode())],
    "--quorum",
    "2",
]


def verify(tmp_path: Path, text: str, *options: str) -> Result:
    path = tmp_path / "charge-proof.json"
    path.write_text(text, encoding="utf-8")
    return runner.invoke(app, ["verify", "charge", str(path), *options])


def test_an_honest_charge_proof_holds_at_every_link(tmp_path: Path) -> None:
    result = verify(tmp_path, honest().to_json(), *KEYS)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[: len(LINKS)]] == [
        f"ok      {link}" for link in LINKS
    ]
    assert lines[-1] == (
        "verified: membership 3 was charged 282 fen in xhb-main/2026-03-07; all 9 links hold"
    )


@pytest.mark.parametrize("name", sorted(forgeries()))
def test_each_forgery_fails_with_its_link_and_message(tmp_path: Path, name: str) -> None:
    forgery = forgeries()[name]
    result = verify(tmp_path, forgery.proof.to_json(), *KEYS)
    assert result.exit_code == 1, result.output
    assert f"FAILED: link '{forgery.link}' does not hold: " in result.output
    assert forgery.words in result.output
    assert f"FAILED  {forgery.link}: " in result.output
    position = LINKS.index(forgery.link)
    assert result.output.count("ok      ") == position
    assert result.output.count(": not checked") == len(LINKS) - position - 1


def test_a_file_that_is_not_a_charge_proof_or_is_missing(tmp_path: Path) -> None:
    broken = verify(tmp_path, '{"format": "mutualaid-proof-bundle/v1"}', *KEYS)
    assert broken.exit_code == 1
    assert "FAILED: charge proof: charge proof format is 'mutualaid-proof-bundle/v1'" in (
        broken.output
    )
    missing = runner.invoke(app, ["verify", "charge", str(tmp_path / "none.json"), *KEYS])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    no_key = runner.invoke(app, ["verify", "charge", str(tmp_path / "charge-proof.json")])
    assert no_key.exit_code == 2
