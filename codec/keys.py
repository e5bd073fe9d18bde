"""The key ring of the payload codec: master keys, per-company data keys, and crypto-shredding.

Keys come from the environment or from a file the operator provides (a mounted secret), never from the
repository. One entry per key, `key_id:base64-of-32-bytes`, comma-separated in a variable or one per line
in a file (`#` starts a comment); the first entry is the current key, the others stay listed so payloads
written before a rotation still decrypt:

    CALLBACKS_CODEC_KEYS="k2:<base64>,k1:<base64>"      or  CALLBACKS_CODEC_KEYS_FILE=/run/secrets/codec
    CALLBACKS_CODEC_COMPANY_KEYS="7:c7-a:<base64>"     or  CALLBACKS_CODEC_COMPANY_KEYS_FILE=...
    CALLBACKS_CODEC_SHREDDED="7,9"                     or  CALLBACKS_CODEC_SHREDDED_FILE=...

`python -m codec.keys new` prints a fresh entry; `python -m codec.keys check` shows what the current
environment loads (key ids only).

Data keys. A company's payloads are encrypted with a key derived from the master key (HKDF-SHA256, the
company id in `info`), so one master key serves every tenant and nothing per company has to be stored.
Payloads of workflows without a company use the "shared" key derived the same way.

Crypto-shredding, honestly. A derived key can always be derived again by whoever holds the master key, so
listing a company in CALLBACKS_CODEC_SHREDDED is a refusal by this software, not an erasure: it stops
every process that loads this ring (workers, clients, the codec server) from encrypting or decrypting that
company's payloads, but an old copy of the code with the master key could still read them. Real erasure
needs a key that exists nowhere else: an explicit company key (`company_id:key_id:base64`) is used as the
data key itself, without derivation, and once it is deleted from every place it was kept (variables,
files, the secret store, backups) the payloads written with it are unrecoverable. Payloads of that company
written under the master key before it got its own key still need the shredded list. Neither touches
PostgreSQL, which holds the same personal data in clear and is erased there separately. The ring is read
once per process: a change takes effect when workers and the codec server restart.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import secrets
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

KEY_BYTES = 32  # AES-256
# Key ids travel in every payload's metadata: short, printable, no separators of the entry format.
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Versioned so a future derivation scheme can coexist with payloads written under this one.
_HKDF_INFO = b"callbacks-codec/v1/"


class CodecError(Exception):
    """Anything the codec refuses; the subclasses say whether configuration or a payload is at fault."""


class KeyConfigError(CodecError, ValueError):
    """The configured keys cannot be loaded. Messages name the source and entry, never the secret."""


class KeyUnavailable(CodecError):
    """A payload names a key this ring does not have (removed after a rotation, or another deployment's)."""


class CompanyShredded(KeyUnavailable):
    """The company's data was shredded: its payloads are neither written nor read any more."""


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_id(self.key_id)
        _check_secret(self.secret, f"key {self.key_id!r}")


@dataclass(frozen=True)
class CompanyKey:
    company_id: int
    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_company_id(self.company_id)
        _check_key_id(self.key_id)
        _check_secret(self.secret, f"key {self.key_id!r} of company {self.company_id}")


@dataclass(frozen=True)
class DataKey:
    """The key that actually encrypts a payload, with the ids the payload metadata records."""

    key_id: str
    company_id: int | None
    secret: bytes = field(repr=False)
    aead: AESGCM = field(repr=False, compare=False)


def _check_key_id(key_id: str) -> None:
    if not _KEY_ID.match(key_id):
        raise KeyConfigError(
            f"key id {key_id!r} is not valid: 1-64 characters of letters, digits, '.', '_', '-'"
        )


def _check_secret(secret: bytes, what: str) -> None:
    if len(secret) != KEY_BYTES:
        raise KeyConfigError(
            f"{what} is {len(secret)} bytes, AES-256 needs exactly {KEY_BYTES} "
            "(generate one with `python -m codec.keys new`)"
        )


def _check_company_id(company_id: int) -> None:
    if isinstance(company_id, bool) or not isinstance(company_id, int) or company_id < 1:
        raise KeyConfigError(f"company id must be a positive integer, got {company_id!r}")


def derive_data_key(master: bytes, company_id: int | None) -> bytes:
    """HKDF-SHA256 of the master key; `info` separates the shared key from every company's key."""
    info = _HKDF_INFO + (b"shared" if company_id is None else b"company/%d" % company_id)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(master)


class KeyRing:
    """Immutable set of keys: the first master key (and each company's first explicit key) encrypts,
    every listed key decrypts. Rotation is a new ring built from a new configuration."""

    def __init__(
        self,
        master_keys: Sequence[MasterKey],
        company_keys: Sequence[CompanyKey] = (),
        shredded: Iterable[int] = (),
    ) -> None:
        if not master_keys:
            raise KeyConfigError("the key ring needs at least one master key")
        self._master: dict[str, MasterKey] = {}
        for key in master_keys:
            if key.key_id in self._master:
                raise KeyConfigError(f"master key id {key.key_id!r} is listed twice")
            self._master[key.key_id] = key
        self._current = master_keys[0]
        self._company: dict[int, dict[str, CompanyKey]] = {}
        for ckey in company_keys:
            if ckey.key_id in self._master:
                raise KeyConfigError(f"company key id {ckey.key_id!r} is also a master key id")
            own = self._company.setdefault(ckey.company_id, {})
            if ckey.key_id in own:
                raise KeyConfigError(f"key id {ckey.key_id!r} of company {ckey.company_id} is listed twice")
            own[ckey.key_id] = ckey  # dicts keep insertion order: the first one is current
        self._shredded = frozenset(shredded)
        for company_id in self._shredded:
            _check_company_id(company_id)
        self._cache: dict[tuple[str, int | None], DataKey] = {}

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    @property
    def shredded(self) -> frozenset[int]:
        return self._shredded

    def is_shredded(self, company_id: int | None) -> bool:
        return company_id is not None and company_id in self._shredded

    def encryption_key(self, company_id: int | None) -> DataKey:
        """The key new payloads of this company (None: no company) are written with."""
        self._refuse_shredded(company_id)
        own = self._company.get(company_id) if company_id is not None else None
        key_id = next(iter(own)) if own else self._current.key_id
        return self._data_key(key_id, company_id)

    def decryption_key(self, key_id: str, company_id: int | None) -> DataKey:
        """The key a stored payload names; KeyUnavailable when it was removed, CompanyShredded when its
        company was shredded."""
        self._refuse_shredded(company_id)
        own = self._company.get(company_id, {}) if company_id is not None else {}
        if key_id not in own and key_id not in self._master:
            owner = "the shared key" if company_id is None else f"company {company_id}"
            raise KeyUnavailable(
                f"payload of {owner} was encrypted with key {key_id!r}, which is not in the key ring "
                f"(master keys: {', '.join(self._master)}); keep a rotated-out key listed for as long "
                "as histories written with it must stay readable"
            )
        return self._data_key(key_id, company_id)

    def describe(self) -> str:
        """What this ring holds, without secrets: for `python -m codec.keys check` and startup logs."""
        companies = ", ".join(f"{c}: {', '.join(keys)}" for c, keys in sorted(self._company.items()))
        return (
            f"master keys: {', '.join(self._master)} (current {self._current.key_id}); "
            f"company keys: {companies or 'none'}; "
            f"shredded companies: {', '.join(map(str, sorted(self._shredded))) or 'none'}"
        )

    def _refuse_shredded(self, company_id: int | None) -> None:
        if self.is_shredded(company_id):
            raise CompanyShredded(
                f"the data of company {company_id} was shredded: its payloads are unreadable"
            )

    def _data_key(self, key_id: str, company_id: int | None) -> DataKey:
        cached = self._cache.get((key_id, company_id))
        if cached is None:
            own = self._company.get(company_id, {}) if company_id is not None else {}
            explicit = own.get(key_id)
            # An explicit company key is the data key itself: deleting it leaves nothing to derive from.
            secret = explicit.secret if explicit else derive_data_key(self._master[key_id].secret, company_id)
            cached = DataKey(key_id=key_id, company_id=company_id, secret=secret, aead=AESGCM(secret))
            self._cache[(key_id, company_id)] = cached
        return cached


# --- loading ---------------------------------------------------------------------------------------


class CodecSettings(BaseSettings):
    """Where the keys come from. Each list is given in its variable or in its file, not both."""

    model_config = SettingsConfigDict(env_prefix="CALLBACKS_CODEC_", env_file=".env", extra="ignore")

    keys: SecretStr | None = None
    keys_file: Path | None = None
    company_keys: SecretStr | None = None
    company_keys_file: Path | None = None
    shredded: str | None = None
    shredded_file: Path | None = None


def _entries(text: str, source: str) -> list[tuple[str, str]]:
    """(where, entry) of a variable's or file's text: comments and blanks dropped, commas split; `where`
    points at the entry (line of a file, position in a variable) for error messages."""
    lines = text.splitlines()
    found: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        for entry in line.split("#", 1)[0].split(","):
            if entry.strip():
                at = f"line {number}" if len(lines) > 1 else f"entry {len(found) + 1}"
                found.append((f"{source}, {at}", entry.strip()))
    return found


def _secret(encoded: str, key_id: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"key {key_id!r} is not valid base64") from None


def parse_master_keys(text: str, source: str) -> list[MasterKey]:
    keys: list[MasterKey] = []
    for where, entry in _entries(text, source):
        parts = [part.strip() for part in entry.split(":")]
        try:
            if len(parts) != 2:
                raise KeyConfigError(f"expected `key_id:base64`, got {len(parts)} fields")
            keys.append(MasterKey(parts[0], _secret(parts[1], parts[0])))
        except KeyConfigError as error:
            raise KeyConfigError(f"{where}: {error}") from None
    return keys


def parse_company_keys(text: str, source: str) -> list[CompanyKey]:
    keys: list[CompanyKey] = []
    for where, entry in _entries(text, source):
        parts = [part.strip() for part in entry.split(":")]
        try:
            if len(parts) != 3:
                raise KeyConfigError(f"expected `company_id:key_id:base64`, got {len(parts)} fields")
            company, key_id, encoded = parts
            if not (company.isascii() and company.isdigit()):
                raise KeyConfigError(f"company id {company!r} is not a number")
            keys.append(CompanyKey(int(company), key_id, _secret(encoded, key_id)))
        except KeyConfigError as error:
            raise KeyConfigError(f"{where}: {error}") from None
    return keys


def parse_company_ids(text: str, source: str) -> list[int]:
    ids: list[int] = []
    for where, entry in _entries(text, source):
        if not (entry.isascii() and entry.isdigit()) or int(entry) < 1:
            raise KeyConfigError(f"{where}: {entry!r} is not a company id")
        ids.append(int(entry))
    return ids


def _text(value: str | SecretStr | None, path: Path | None, variable: str) -> tuple[str, str] | None:
    """(text, source name) of one list, from its variable or its file."""
    if value is not None and path is not None:
        raise KeyConfigError(f"set {variable} or {variable}_FILE, not both")
    if path is not None:
        try:
            return path.read_text(encoding="utf-8"), f"{variable}_FILE {path}"
        except OSError as error:
            raise KeyConfigError(f"{variable}_FILE: cannot read {path}: {error.strerror}") from None
    if value is None:
        return None
    return (value.get_secret_value() if isinstance(value, SecretStr) else value), variable


def load_keyring(settings: CodecSettings | None = None) -> KeyRing:
    """The ring of this process, from CALLBACKS_CODEC_* (or the given settings)."""
    settings = settings if settings is not None else CodecSettings()
    master = _text(settings.keys, settings.keys_file, "CALLBACKS_CODEC_KEYS")
    if master is None:
        raise KeyConfigError(
            "no codec keys: set CALLBACKS_CODEC_KEYS or CALLBACKS_CODEC_KEYS_FILE "
            "(generate a key with `python -m codec.keys new`)"
        )
    master_keys = parse_master_keys(*master)
    if not master_keys:
        raise KeyConfigError(f"{master[1]} lists no keys (expected `key_id:base64`, first one current)")
    company = _text(settings.company_keys, settings.company_keys_file, "CALLBACKS_CODEC_COMPANY_KEYS")
    shredded = _text(settings.shredded, settings.shredded_file, "CALLBACKS_CODEC_SHREDDED")
    return KeyRing(
        master_keys,
        parse_company_keys(*company) if company else (),
        parse_company_ids(*shredded) if shredded else (),
    )


def new_key_entry(key_id: str | None = None, company_id: int | None = None) -> str:
    """A fresh random key in the entry format; the default id carries the day, for rotation records."""
    key_id = key_id or f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"
    secret = secrets.token_bytes(KEY_BYTES)
    encoded = base64.b64encode(secret).decode()
    if company_id is not None:
        CompanyKey(company_id, key_id, secret)  # refuses a bad id before printing anything
        return f"{company_id}:{key_id}:{encoded}"
    MasterKey(key_id, secret)
    return f"{key_id}:{encoded}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codec.keys", description="Payload codec keys.")
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="print a new key entry (put it first to make it current)")
    new.add_argument("--id", dest="key_id", help="key id (default: k<date>-<random>)")
    new.add_argument("--company", type=int, help="print a company key entry for this company id")
    commands.add_parser("check", help="load the keys of this environment and list their ids")
    args = parser.parse_args(argv)
    try:
        if args.command == "new":
            print(new_key_entry(args.key_id, args.company))
        else:
            print(load_keyring().describe())
    except KeyConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
