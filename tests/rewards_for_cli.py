"""Custom rewards loaded by `svdd generate --reward module:callable` in the CLI tests."""


def count_a(seqs):
    return [s.count("A") for s in seqs]


def wrong_length(seqs):
    return [0.0]
