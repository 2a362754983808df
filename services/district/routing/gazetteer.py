"""The street of an address without coordinates, from the place names in it. Pure.

Every name the gazetteer knows points to a set of streets: a road to the streets it runs in or
beside (`deploy/reference/jingan_roads.csv`), a street's own name (`北站街道`, `彭浦镇`, or the
name without `街道` when that is three characters or more: `静安寺`, `彭浦新村`) to that street.
An address is matched when the names found in it (longest first, without overlaps) point
together to exactly one street: `江宁路与新闸路路口` is 江宁路街道, because 新闸路 runs in two
streets but 江宁路 only in one. A road of several streets alone, names that disagree, an
address naming another district (or another district's 街道), or no known name at all: no
match, and the case waits for a district operator. House-number ranges would split long roads
between streets; there are no such data yet.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_STREET_SUFFIX = "街道"
_MIN_SHORT_NAME = 3  # `北站` alone is too short to trust


@dataclass(frozen=True, slots=True)
class AddressMatch:
    unit_code: str
    names: tuple[str, ...]  # the names in the address that decided it


class Gazetteer:
    def __init__(self, names: Iterable[tuple[str, str]], foreign: Iterable[str] = ()) -> None:
        """`names`: (unit_code, name) pairs; `foreign`: names of other districts (`徐汇区`)."""
        self._units: dict[str, frozenset[str]] = {}
        for unit_code, name in names:
            key = _normalize(name)
            if key:
                self._units[key] = self._units.get(key, frozenset()) | {unit_code}
        self._names = _alternation(self._units)
        self._foreign = _alternation(_normalize(f) for f in foreign if f.strip())

    @classmethod
    def for_district(
        cls,
        roads: Iterable[tuple[str, str]],
        streets: Iterable[tuple[str, str]],
        foreign: Iterable[str],
    ) -> Gazetteer:
        """From (unit_code, road) pairs and the streets' (unit_code, official name) pairs."""
        names = list(roads)
        for unit_code, name in streets:
            names.append((unit_code, name))
            short = name.removesuffix(_STREET_SUFFIX)
            if short != name and len(short) >= _MIN_SHORT_NAME:
                names.append((unit_code, short))
        return cls(names, foreign)

    def match(self, address: str | None) -> AddressMatch | None:
        """The one street the address points to, or None (unknown or ambiguous)."""
        text = _normalize(address or "")
        if not text or self._names is None:
            return None
        if self._foreign is not None and self._foreign.search(text):
            return None
        found = list(self._names.finditer(text))
        if any(text.startswith(_STREET_SUFFIX, m.end()) for m in found):
            return None  # `长寿路街道` is not ours: ours are known names, matched whole
        names = tuple(dict.fromkeys(m.group() for m in found))
        if not names:
            return None
        candidates = frozenset.intersection(*(self._units[n] for n in names))
        if len(candidates) != 1:
            return None
        return AddressMatch(next(iter(candidates)), names)

    def foreign_district(self, address: str | None) -> str | None:
        """The other district the address names (`徐汇区`), or None."""
        text = _normalize(address or "")
        found = self._foreign.search(text) if self._foreign is not None and text else None
        return found.group() if found else None

    def street_of(self, address: str | None) -> str | None:
        found = self.match(address)
        return found.unit_code if found else None


def _normalize(text: str) -> str:
    """Full-width forms folded (NFKC), whitespace removed."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _alternation(names: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern matching any of the names, the longest one where several start at a place."""
    ordered = sorted(set(names), key=lambda n: (-len(n), n))
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None
