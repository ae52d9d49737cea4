"""The collector: database, association, judgement, localization, and what maps read."""
