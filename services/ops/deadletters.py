"""`cityops deadletter list | show | replay`: the dead letters on `cityops.deadletter`, read
from the broker. A dead letter is named by its source, `<topic>/<partition>/<offset>`. `show`
prints one, masked; its original is unsealed for someone holding the phone key
(CITYOPS_PHONE_KEY or the key file) who gives a reason, recorded in `deadletter_unseals`;
`replay` re-sends the original bytes, keyed as before, to the source topic after a fix (a rule
added, a bug fixed) and records it in `deadletter_replays` (who, when, where it landed): a dead
letter already replayed is not replayed again without `--force`."""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import topics
from contracts.events import DeadLetter
from services.common.config import Settings, duration
from services.common.crypto import PhoneVault, parse_ring


@dataclass(frozen=True)
class Letter:
    """One dead letter as read from the topic."""

    letter: DeadLetter
    #: where the dead letter itself is (on cityops.deadletter)
    partition: int
    offset: int

    @property
    def ref(self) -> str:
        return f"{self.letter.topic}/{self.letter.partition}/{self.letter.offset}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="deadletter_command", required=True)
    listing = sub.add_parser("list", help="the dead letters, oldest first")
    _filters(listing)
    show = sub.add_parser("show", help="one dead letter; its sealed original with --reason")
    show.add_argument("ref", help="its source: <topic>/<partition>/<offset> (as `list` prints)")
    show.add_argument(
        "--reason", default="", help="why the original is unsealed (needs the key), recorded"
    )
    show.add_argument("--actor", default="", help="who unseals (default: the login name)")
    replay = sub.add_parser("replay", help="re-send originals to their source topic")
    replay.add_argument("refs", nargs="*", metavar="ref", help="<topic>/<partition>/<offset>")
    replay.add_argument(
        "--all", action="store_true", help="every dead letter the filters select (not only refs)"
    )
    _filters(replay)
    replay.add_argument("--force", action="store_true", help="replay again what was replayed")
    replay.add_argument("--note", default="", help="why (the fix it follows), recorded")
    replay.add_argument("--actor", default="", help="who replays (default: the login name)")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", help="source topic")
    parser.add_argument("--kind", help="error kind (schema, internal_error, ...)")
    parser.add_argument(
        "--since", type=_since, help="dead-lettered at or after: ISO time, or a duration (2h, 3d)"
    )


def _since(text: str) -> datetime:
    try:
        ago = duration(text)
        return datetime.now(UTC) - (ago or timedelta())
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time or duration: {text}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def main(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.kafka_bootstrap:
        print("cityops deadletter: set CITYOPS_KAFKA_BOOTSTRAP", file=sys.stderr)
        return 2
    letters = await read_letters(settings.kafka_bootstrap)
    if args.deadletter_command == "list":
        return _list(select(letters, args.topic, args.kind, args.since))
    if args.deadletter_command == "show":
        return await _show(settings, letters, args)
    return await _replay(settings, letters, args)


async def read_letters(bootstrap: str) -> list[Letter]:
    """Every dead letter on the topic, by source (the first of any duplicates), oldest first."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topics.DEADLETTER)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topics.DEADLETTER) or set()
        tps = [TopicPartition(topics.DEADLETTER, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[str, Letter] = {}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    if r.value is None:
                        continue
                    letter = Letter(DeadLetter.model_validate_json(r.value), r.partition, r.offset)
                    found.setdefault(letter.ref, letter)
        return sorted(found.values(), key=lambda x: (x.letter.at, x.ref))
    finally:
        await consumer.stop()


def select(
    letters: Iterable[Letter], topic: str | None, kind: str | None, since: datetime | None
) -> list[Letter]:
    return [
        x
        for x in letters
        if (topic is None or x.letter.topic == topic)
        and (kind is None or x.letter.error.kind == kind)
        and (since is None or x.letter.at >= since)
    ]


def vault_if_held(settings: Settings) -> PhoneVault | None:
    """The phone key ring when this operator holds it (never creates a key file)."""
    if settings.phone_key:
        return PhoneVault(parse_ring(settings.phone_key))
    path = Path(settings.phone_key_file)
    return PhoneVault(parse_ring(path.read_text())) if path.exists() else None


def original(letter: DeadLetter, vault: PhoneVault | None) -> bytes | None:
    """The original value bytes (None: a redacted letter without the key to unseal it)."""
    if letter.redacted:
        if vault is None or letter.value_sealed is None:
            return None
        return vault.open_bytes(base64.b64decode(letter.value_sealed))
    return None if letter.value is None else base64.b64decode(letter.value)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


def _list(letters: list[Letter]) -> int:
    for x in letters:
        d = x.letter
        detail = d.error.detail.replace("\n", " ")
        detail = detail if len(detail) <= 100 else detail[:99] + "…"
        redacted = " redacted" if d.redacted else ""
        print(f"{x.ref}\t{d.at.isoformat(timespec='seconds')}\t{d.error.kind}{redacted}\t{detail}")
    print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    return 0


def _find(letters: list[Letter], ref: str) -> Letter | None:
    return next((x for x in letters if x.ref == ref), None)


async def _show(settings: Settings, letters: list[Letter], args: argparse.Namespace) -> int:
    found = _find(letters, args.ref)
    if found is None:
        print(f"cityops deadletter: no dead letter from {args.ref}", file=sys.stderr)
        return 1
    d = found.letter
    shown = d.model_dump(mode="json", by_alias=True, exclude={"value", "value_sealed"})
    shown["key"] = _text(None if d.key is None else base64.b64decode(d.key))
    shown["value"] = _text(None if d.value is None else base64.b64decode(d.value))
    if d.redacted:
        shown["original"] = await _unsealed(settings, found, args)
    print(json.dumps(shown, ensure_ascii=False, indent=2))
    return 0


async def _unsealed(settings: Settings, x: Letter, args: argparse.Namespace) -> str | None:
    """A redacted letter's original, for an operator who holds the key and gives a reason,
    recorded in `deadletter_unseals` before it is shown; None (and why, on stderr) otherwise."""
    vault = vault_if_held(settings)
    if vault is None:
        print("cityops deadletter: the original is sealed; no phone key here", file=sys.stderr)
        return None
    if not args.reason.strip() or not settings.database_url:
        why = "give --reason (recorded)" if settings.database_url else "set CITYOPS_DATABASE_URL"
        print(f"cityops deadletter: the original is sealed; {why} to unseal it", file=sys.stderr)
        return None
    plain = original(x.letter, vault)
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            'INSERT INTO deadletter_unseals (topic, "partition", "offset", unsealed_by, reason)'
            " VALUES ($1, $2, $3, $4, $5)",
            x.letter.topic, x.letter.partition, x.letter.offset,
            args.actor or getpass.getuser(), args.reason.strip(),
        )  # fmt: skip
    finally:
        await conn.close()
    return _text(plain)


async def _replay(settings: Settings, letters: list[Letter], args: argparse.Namespace) -> int:
    if not settings.database_url:
        print("cityops deadletter: set CITYOPS_DATABASE_URL", file=sys.stderr)
        return 2
    if bool(args.refs) == args.all:
        print("cityops deadletter replay: name dead letters, or --all", file=sys.stderr)
        return 2
    chosen = select(letters, args.topic, args.kind, args.since)
    if args.refs:
        missing = [r for r in args.refs if _find(chosen, r) is None]
        if missing:
            print(f"cityops deadletter: no dead letter from {', '.join(missing)}", file=sys.stderr)
            return 1
        chosen = [x for x in chosen if x.ref in args.refs]
    vault = vault_if_held(settings)
    actor = args.actor or getpass.getuser()
    code = 0
    conn = await asyncpg.connect(settings.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for x in chosen:
            result = await replay_one(conn, producer, x, vault, actor, args.note, args.force)
            print(f"{x.ref}\t{result}")
            code = code or (0 if result.startswith("replayed") else 1)
    finally:
        await producer.stop()
        await conn.close()
    return code


async def replay_one(
    conn: asyncpg.Connection,
    producer: AIOKafkaProducer,
    x: Letter,
    vault: PhoneVault | None,
    actor: str,
    note: str = "",
    force: bool = False,
) -> str:
    """Re-send one dead letter's original and record it, in one transaction: two operators
    replaying the same letter at once send it once. Returns what happened."""
    d = x.letter
    raw = original(d, vault)
    if raw is None:
        return "skipped: the original is sealed and this operator has no phone key"
    source = (d.topic, d.partition, d.offset)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_id(x.ref))
        before = await conn.fetchrow(
            "SELECT replayed_by, replayed_at FROM deadletter_replays"
            ' WHERE topic = $1 AND "partition" = $2 AND "offset" = $3'
            " ORDER BY replayed_at DESC LIMIT 1",
            *source,
        )
        if before is not None and not force:
            at = before["replayed_at"].isoformat(timespec="seconds")
            return f"skipped: replayed by {before['replayed_by']} at {at} (--force to repeat)"
        key = None if d.key is None else base64.b64decode(d.key)
        sent = await producer.send_and_wait(d.topic, raw, key=key)
        await conn.execute(
            'INSERT INTO deadletter_replays (topic, "partition", "offset", kind, replayed_by,'
            " note, forced, sent_partition, sent_offset) VALUES ($1, $2, $3, $4, $5, $6, $7,"
            " $8, $9)",
            *source,
            d.error.kind,
            actor,
            note,
            before is not None,
            sent.partition,
            sent.offset,
        )
    return f"replayed to {d.topic}/{sent.partition}/{sent.offset}"


def _lock_id(ref: str) -> int:
    return zlib.crc32(f"deadletter:{ref}".encode()) - 2**31
