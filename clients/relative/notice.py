"""What a relative is told before the first message (SPEC section 7, "Honesty towards users")."""

from __future__ import annotations

from typing import Final

#: Shown, in full, before the first message leaves a device; recorded in the profile.
REVIEW_NOTICE: Final = (
    "Before you send your first message, please know this.\n"
    "\n"
    "Authorised staff of the institution (the prison) may read the messages you send and\n"
    "the replies you receive, when the law allows it (article 36 of the Penitentiary\n"
    "Principles Act, Penitentiaire beginselenwet). Every such reading is recorded in a log\n"
    "that cannot be changed unnoticed.\n"
    "\n"
    "Mail with verified lawyers and other privileged correspondents is exempt: no\n"
    "screener can open it.\n"
    "\n"
    "Voordat u uw eerste bericht verstuurt: bevoegde medewerkers van de inrichting mogen\n"
    "uw berichten en de antwoorden lezen als de wet dat toestaat (artikel 36\n"
    "Penitentiaire beginselenwet). Post met geverifieerde advocaten en andere\n"
    "geheimhouders is uitgezonderd: geen controleur kan die openen."
)
