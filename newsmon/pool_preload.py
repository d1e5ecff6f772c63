"""Imported once by the extraction pool's fork server, so every worker forked from it starts warm.

Importing trafilatura and loading the date parser's locales cost seconds; done here, before
any worker exists, the workers inherit them instead of each paying again.
"""

import gc

from parsers.articles import warm_up

warm_up()
# Everything loaded so far lives as long as the workers do. Frozen, the garbage collector
# skips it: less CPU per collection, and fewer pages copied out of the fork server's memory.
gc.freeze()
