"""The custody tests' figures, printed at the end of the run (conftest's summary)."""

from __future__ import annotations

# Figures of the custody tests (runs, keys created, secrets delivered, orphans), printed at the
# end of the run; the README carries the latest table.
CUSTODY_FIGURES: list[tuple[str, int, int, int, int]] = []
