"""Imported once by the extraction pool's fork server, so every worker forked from it starts warm.

Importing trafilatura and loading the date parser's locales cost seconds; done here, before
any worker exists, the workers inherit them instead of each paying again.
"""

from parsers.articles import warm_up

warm_up()
