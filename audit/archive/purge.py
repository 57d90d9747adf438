"""Purging the ciphertext of envelopes once they are decrypted.

An envelope keeps the item exactly as the archive delivered it, ciphertext included, which is
most of the database's size. Once its message is stored the ciphertext is only needed to
decrypt it again, which nothing does: a decrypted envelope is never decrypted twice. A purge
empties ``encrypt_chat_msg`` and ``encrypt_random_key`` of the decrypted envelopes (the
columns are not nullable: an empty string) and notes in ``raw`` the digest of the item they
were (:data:`audit.archive.ingest.PURGED`), so that a re-delivery of the same item is still
a duplicate and a different one still a conflict. Failed and pending envelopes keep theirs
(``audit retry-failed`` decrypts them). Messages, rescans and exports read the messages, not
the envelopes. Each batch is recorded in the audit trail with the bytes it cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from audit.archive.ingest import PURGED, content_digest, envelope_item
from audit.domain import Action
from audit.store.access import Principal, record
from audit.store.db import session_scope
from audit.store.models import Envelope, EnvelopeState


@dataclass
class PurgeStats:
    envelopes: int = 0  # envelopes whose ciphertext was cleared
    bytes: int = 0  # characters of base64 ciphertext cleared (one byte each)


def purge_ciphertext(
    engine: Engine,
    actor: Principal,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> PurgeStats:
    """Clear the ciphertext of every decrypted envelope that still has it; one transaction
    (and one audit-trail entry) per batch, so an interrupted purge keeps what it did."""
    stats = PurgeStats()
    after = 0
    while True:
        with session_scope(engine) as session:
            envelopes = session.scalars(
                select(Envelope)
                .where(
                    Envelope.id > after,
                    Envelope.state == EnvelopeState.DECRYPTED,
                    Envelope.encrypt_chat_msg != "",
                )
                .order_by(Envelope.id)
                .limit(batch_size)
            ).all()
            if not envelopes:
                return stats
            changes = []
            cleared = 0
            for e in envelopes:
                size = len(e.encrypt_chat_msg) + len(e.encrypt_random_key)
                digest = content_digest(envelope_item(e))
                changes.append(
                    {
                        "id": e.id,
                        "encrypt_chat_msg": "",
                        "encrypt_random_key": "",
                        "raw": {**e.raw, PURGED: {"sha256": digest, "bytes": size}},
                    }
                )
                cleared += size
            session.expunge_all()
            session.execute(update(Envelope), changes)
            first, last = envelopes[0].id, envelopes[-1].id
            record(
                session,
                actor,
                Action.CIPHERTEXT_PURGE,
                f"envelopes {first}-{last}",
                envelopes=len(envelopes),
                bytes=cleared,
            )
            after = last
        stats.envelopes += len(envelopes)
        stats.bytes += cleared
        if progress:
            progress(len(envelopes))
