"""Domains: pretrained models, reward oracles and value networks, all loadable offline.

`svdd.domains.images`, `svdd.domains.molecules`, `svdd.domains.sequences` each ship small weights trained by
their own scripts, and rewards that follow the `svdd.rewards` protocol.
"""
