"""Independent random streams: every stream derives from the user's seed, the run it
concerns, its purpose and an index, through `np.random.SeedSequence`, so two runs, two
base solutions or two purposes never share a stream by accident (`seed + i` schemes
do: run 0's second layer and run 1's first would draw the same dropout masks).
"""

import hashlib
import json

import numpy as np


def _word(part) -> int:
    """A non-negative integer for a seed part: ints as they are, anything else (a
    purpose name, a run identity) as 64 bits of its SHA-256."""
    if isinstance(part, (int, np.integer)) and part >= 0:
        return int(part)
    text = part if isinstance(part, str) else json.dumps(part, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def sequence(seed: int, purpose: str, *parts) -> np.random.SeedSequence:
    """The SeedSequence of (`seed`, `purpose`, *`parts`), e.g. (0, "subspace", run, i)."""
    return np.random.SeedSequence([_word(seed), _word(purpose), *map(_word, parts)])


def rng(seed: int, purpose: str, *parts) -> np.random.Generator:
    """A numpy generator for the stream (`seed`, `purpose`, *`parts`)."""
    return np.random.default_rng(sequence(seed, purpose, *parts))


def integer(seed: int, purpose: str, *parts, bits: int = 31) -> int:
    """One integer in [0, 2**bits) from the stream, for APIs that take an int seed
    (Keras layers, scikit-learn, TensorFlow)."""
    return int(sequence(seed, purpose, *parts).generate_state(1, np.uint64)[0] % (1 << bits))

