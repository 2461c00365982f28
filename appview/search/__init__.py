"""Search: full text + trigram candidates, plyr.fm's tiered ranking, REST and XRPC surfaces."""
