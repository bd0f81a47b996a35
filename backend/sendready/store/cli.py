"""`sendready db`: migrate the history database, show its revision, prune old scans."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, TypeVar

from ..config import ConfigError, Settings

if TYPE_CHECKING:
    from .store import Store

EXIT_OK, EXIT_BEHIND = 0, 1

#: The `sendready` command's parser class (it raises instead of exiting).
P = TypeVar("P", bound=argparse.ArgumentParser)


def register(subparsers: argparse._SubParsersAction[P]) -> None:
    """Add `db upgrade`, `db current` and `db prune` to the `sendready` command."""
    db = subparsers.add_parser("db", help="manage the history database")
    actions = db.add_subparsers(dest="db_command", required=True, parser_class=type(db))
    upgrade = actions.add_parser("upgrade", help="migrate the database to the newest schema")
    upgrade.set_defaults(func=cmd_upgrade)
    current = actions.add_parser(
        "current", help="print the database's schema revision (exit 1 when behind)"
    )
    current.set_defaults(func=cmd_current)
    prune = actions.add_parser("prune", help="delete scans finished longer ago than --days")
    prune.add_argument(
        "--days",
        type=_days,
        metavar="N",
        help="keep this many days; default: SENDREADY_HISTORY_DAYS",
    )
    prune.set_defaults(func=cmd_prune)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 0 <= days <= 3650:
        raise argparse.ArgumentTypeError("must be between 0 and 3650")
    return days


@contextmanager
def _opened(settings: Settings, *, migrate: bool = True) -> Iterator[Store]:
    """The store, or a one-line ConfigError when its database cannot be reached."""
    from sqlalchemy.exc import OperationalError

    from . import open_store

    try:
        store = open_store(settings, migrate=migrate)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise ConfigError(f"cannot open the history database: {reason}") from None
    with store:
        yield store


def cmd_upgrade(args: argparse.Namespace, out: IO[str]) -> int:
    from . import current_revision

    with _opened(Settings.from_env()) as store:
        out.write(f"{store!r}: at revision {current_revision(store.engine)}\n")
    return EXIT_OK


def cmd_current(args: argparse.Namespace, out: IO[str]) -> int:
    from . import current_revision, head_revision

    with _opened(Settings.from_env(), migrate=False) as store:
        current = current_revision(store.engine)
        head = head_revision()
        out.write(f"{store!r}: at revision {current or 'none (empty)'}; newest {head}\n")
    return EXIT_OK if current == head else EXIT_BEHIND


def cmd_prune(args: argparse.Namespace, out: IO[str]) -> int:
    settings = Settings.from_env()
    days = settings.history_days if args.days is None else args.days
    with _opened(settings) as store:
        count = store.prune(days)
    out.write(f"pruned {count} scan{'s' if count != 1 else ''} finished over {days} days ago\n")
    return EXIT_OK
