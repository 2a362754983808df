"""Regenerate contracts/schemas/*.json and contracts/asyncapi.json from the pydantic models."""

from __future__ import annotations

from pathlib import Path

from contracts.asyncapi import rendered

ROOT = Path(__file__).resolve().parent.parent / "contracts"


def main() -> None:
    for rel, text in rendered().items():
        path = ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote contracts/{rel}")


if __name__ == "__main__":
    main()
