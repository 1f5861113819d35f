"""The embedded default graph: a seeded synthetic multimodal KG with a planted, documented signal.

``make_synthetic("default")`` needs no download and trains in minutes on a laptop CPU. Every
entity has a latent type ``(group, fine)``, a position ``theta`` on a ring and a popularity ``w``;
relation ``r`` links heads of some types to tails of other types whose ring position is close to
``theta_h + delta_r``. Image features reveal ``group`` and ``cos(j theta)``, text features reveal
``fine`` and ``sin(j theta)``: each modality alone is partial, together they are complete.
docs/synthetic-graph.md gives the formulas. Generation uses only a local ``numpy`` generator seeded
from ``seed``: the same ``(preset, seed)`` always gives identical tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from roam_graph.data.errors import DataError
from roam_graph.data.mmkg_data import MMKGData, Modality

CATEGORIES: tuple[str, ...] = ("1-1", "1-N", "N-1", "N-N")


@dataclass(frozen=True)
class SyntheticSpec:
    """The generator's knobs (symbols as in docs/synthetic-graph.md). Types are the
    ``num_groups * fine_per_group`` pairs ``(group, fine)``; ``num_triples`` is a target before
    noise, de-duplication and splitting, capped as a block uses at most ``participation`` of a type.
    """

    num_entities: int  # E
    num_groups: int  # G: coarse groups, revealed by the image
    fine_per_group: int  # F: fine types within a group, revealed by the text
    num_relations: int  # R
    types_per_relation: int  # B: (head type, tail type) blocks per relation
    num_triples: int  # target triple count
    fan: int  # f: multiplicity of the "N" side
    participation: float  # rho: max fraction of a type's entities used by one block
    rank_noise: float  # sigma_r: noise (radians) on the ring positions used for matching
    popularity: float  # sigma_p: entity popularity is exp(sigma_p * N(0, 1))
    corrupt_fraction: float  # p_c: triples whose tail is replaced by a uniform random entity
    valid_fraction: float
    test_fraction: float
    image_width: int
    text_width: int
    image_missing: float  # fraction of entities with no image
    text_missing: float  # fraction of entities with no text
    image_noise: float  # sigma_img
    text_noise: float  # sigma_txt
    type_scale: float  # s: weight of the one-hot type code in the features
    angle_scale: float  # a: weight of the ring harmonics in the features
    harmonics: int  # m: image shows cos(j theta), text sin(j theta), j = 1..m

    @property
    def num_types(self) -> int:
        return self.num_groups * self.fine_per_group


SYNTHETIC_PRESETS: dict[str, SyntheticSpec] = {
    "tiny": SyntheticSpec(
        num_entities=480, num_groups=3, fine_per_group=3, num_relations=10, types_per_relation=4,
        num_triples=3000, fan=3, participation=0.9, rank_noise=0.03, popularity=1.0,
        corrupt_fraction=0.03, valid_fraction=0.08, test_fraction=0.08, image_width=16,
        text_width=12, image_missing=0.12, text_missing=0.15, image_noise=0.6, text_noise=0.6,
        type_scale=2.0, angle_scale=1.0, harmonics=6,
    ),
    "default": SyntheticSpec(
        num_entities=4000, num_groups=6, fine_per_group=6, num_relations=24, types_per_relation=10,
        num_triples=45000, fan=4, participation=0.9, rank_noise=0.03, popularity=1.0,
        corrupt_fraction=0.03, valid_fraction=0.05, test_fraction=0.05, image_width=64,
        text_width=48, image_missing=0.12, text_missing=0.15, image_noise=1.0, text_noise=1.0,
        type_scale=2.0, angle_scale=1.0, harmonics=6,
    ),
}


@dataclass(frozen=True)
class SyntheticTruth:
    """The hidden variables behind a synthetic graph (for tests and probes; models never see it).

    Attributes:
        entity_type: int64 ``[E]``, ``group * fine_per_group + fine``.
        angle: float64 ``[E]``, the ring position ``theta`` in ``[0, 2 pi)``.
        popularity: float64 ``[E]``, the popularity weight ``w``.
        relation_category: relation id -> one of ``CATEGORIES``.
        relation_shift: float64 ``[R]``, the ring shift ``delta_r``.
        head_types / tail_types: int64 ``[R, types_per_relation]``; relation ``r`` links head type
            ``head_types[r, b]`` to tail type ``tail_types[r, b]``.
    """

    entity_type: torch.Tensor
    angle: torch.Tensor
    popularity: torch.Tensor
    relation_category: tuple[str, ...]
    relation_shift: torch.Tensor
    head_types: torch.Tensor
    tail_types: torch.Tensor


def make_synthetic(preset: str = "default", seed: int = 0) -> MMKGData:
    """The synthetic graph ``preset`` (a key of ``SYNTHETIC_PRESETS``) generated from ``seed``.

    Named ``"synthetic"`` for the default preset and ``"synthetic-<preset>"`` otherwise.
    """
    return make_synthetic_with_truth(preset, seed)[0]


def make_synthetic_with_truth(preset: str = "default",
                              seed: int = 0) -> tuple[MMKGData, SyntheticTruth]:
    """Like ``make_synthetic`` but also return the hidden variables (``SyntheticTruth``)."""
    if preset not in SYNTHETIC_PRESETS:
        raise DataError(f"unknown synthetic preset {preset!r}; "
                        f"valid presets: {', '.join(sorted(SYNTHETIC_PRESETS))}")
    name = "synthetic" if preset == "default" else f"synthetic-{preset}"
    return generate_synthetic(SYNTHETIC_PRESETS[preset], seed, name)


def generate_synthetic(spec: SyntheticSpec, seed: int = 0,
                       name: str = "synthetic") -> tuple[MMKGData, SyntheticTruth]:
    """Generate a graph from an explicit ``spec``; deterministic in ``(spec, seed)``."""
    rng = np.random.default_rng(seed)
    E, K = spec.num_entities, spec.num_types
    order = rng.permutation(E)
    entity_type, rank = np.empty(E, dtype=np.int64), np.empty(E, dtype=np.int64)
    entity_type[order], rank[order] = np.arange(E) % K, np.arange(E) // K  # rank within the type
    theta = 2 * np.pi * (rank + rng.random(E)) / np.bincount(entity_type, minlength=K)[entity_type]
    popularity = np.exp(spec.popularity * rng.standard_normal(E))
    triples, cats, head_types, tail_types, shift = _triples(spec, rng, entity_type, theta,
                                                            popularity)
    splits = _split(spec, rng, triples)
    group, fine = np.divmod(entity_type, spec.fine_per_group)
    wave = theta[:, None] * np.arange(1, spec.harmonics + 1)
    modalities = {
        "image": _modality(rng, np.eye(spec.num_groups)[group], np.cos(wave), spec.image_width,
                           spec.image_noise, spec.image_missing, spec),
        "text": _modality(rng, np.eye(spec.fine_per_group)[fine], np.sin(wave), spec.text_width,
                          spec.text_noise, spec.text_missing, spec),
    }
    width_e, width_r = len(str(E - 1)), len(str(spec.num_relations - 1))
    data = MMKGData(
        name=name,
        entity_names=tuple(f"e{i:0{max(width_e, 5)}d}" for i in range(E)),
        relation_names=tuple(f"r{i:0{max(width_r, 2)}d}" for i in range(spec.num_relations)),
        splits={k: torch.from_numpy(v) for k, v in splits.items()},
        modalities=modalities,
    )
    truth = SyntheticTruth(
        entity_type=torch.from_numpy(entity_type), angle=torch.from_numpy(theta),
        popularity=torch.from_numpy(popularity),
        relation_category=tuple(CATEGORIES[c] for c in cats),
        relation_shift=torch.from_numpy(shift),
        head_types=torch.from_numpy(head_types), tail_types=torch.from_numpy(tail_types),
    )
    return data, truth


def _triples(spec: SyntheticSpec, rng: np.random.Generator, entity_type: np.ndarray,
             theta: np.ndarray, popularity: np.ndarray) -> tuple[np.ndarray, ...]:
    """Unique ``(h, r, t)`` rows, relation categories, type maps and ring shifts."""
    E, K, R, B, f = (spec.num_entities, spec.num_types, spec.num_relations,
                     spec.types_per_relation, spec.fan)
    cats = rng.permutation(np.arange(R) % len(CATEGORIES))  # index into CATEGORIES
    per_unit = np.where(cats == 3, f, 1).sum() * B  # triples per unit of the block size
    rings = [np.flatnonzero(entity_type == k) for k in range(K)]
    rings = [ids[np.argsort(theta[ids])] for ids in rings]  # members of each type by angle
    smallest = min(map(len, rings))
    base = min(spec.num_triples // per_unit, int(spec.participation * smallest)) // f * f
    if B > K:
        raise DataError(f"synthetic spec: {B} blocks per relation need at least {B} types, not {K}")
    if base < f:
        raise DataError(f"synthetic spec: {smallest} entities per type are too few (fan {f})")
    head_types = np.stack([rng.choice(K, B, replace=False) for _ in range(R)])
    tail_types = np.stack([rng.choice(K, B, replace=False) for _ in range(R)])
    shift = 2 * np.pi * rng.random(R)
    blocks = []
    for r in range(R):
        n_head = base // f if cats[r] == 1 else base
        n_tail = base // f if cats[r] == 2 else base
        k = f if cats[r] == 3 else 1
        for b in range(B):
            heads = _stratified(rng, rings[head_types[r, b]], n_head)
            tails = _stratified(rng, rings[tail_types[r, b]], n_tail)
            hkey = theta[heads] + shift[r] + spec.rank_noise * rng.standard_normal(n_head)
            tkey = theta[tails] + spec.rank_noise * rng.standard_normal(n_tail)
            heads = heads[np.argsort(hkey % (2 * np.pi))]
            tails = tails[np.argsort(tkey % (2 * np.pi))]
            if cats[r] == 0:  # 1-1: the i-th head takes the i-th tail
                h_at = t_at = np.arange(n_head)
            elif cats[r] == 1:  # 1-N: every tail takes the head whose weighted arc covers it
                h_at = _arc(popularity[heads], (np.arange(n_tail) + 0.5) / n_tail)
                t_at = np.arange(n_tail)
            else:  # N-1, N-N: every head takes k consecutive tails from its weighted arc on
                first = _arc(popularity[tails], (np.arange(n_head) + 0.5) / n_head) - (k - 1) // 2
                h_at = np.repeat(np.arange(n_head), k)
                t_at = ((first[:, None] + np.arange(k)) % n_tail).ravel()
            blocks.append(np.stack([heads[h_at], np.full(len(h_at), r), tails[t_at]], 1))
    triples = np.concatenate(blocks).astype(np.int64)
    corrupt = rng.random(len(triples)) < spec.corrupt_fraction
    triples[corrupt, 2] = rng.integers(0, E, int(corrupt.sum()))
    triples = triples[triples[:, 0] != triples[:, 2]]
    keys = (triples[:, 0] * R + triples[:, 1]) * E + triples[:, 2]
    triples = triples[np.unique(keys, return_index=True)[1]]
    return triples, cats, head_types.astype(np.int64), tail_types.astype(np.int64), shift


def _arc(weights: np.ndarray, quantile: np.ndarray) -> np.ndarray:
    """Index of the arc holding each quantile when ``[0, 1)`` is cut into arcs ~ ``weights``."""
    cum = np.cumsum(weights) / weights.sum()
    return np.minimum(np.searchsorted(cum, quantile, side="right"), len(weights) - 1)


def _stratified(rng: np.random.Generator, ring: np.ndarray, m: int) -> np.ndarray:
    """``m`` members of an angle-sorted ``ring``, evenly spread: every ``n/m``-th from a random
    offset, so their angles stay close to uniform on the circle."""
    return ring[np.floor((np.arange(m) + rng.random()) * len(ring) / m).astype(np.int64)]


def _split(spec: SyntheticSpec, rng: np.random.Generator,
           triples: np.ndarray) -> dict[str, np.ndarray]:
    """Shuffle, keep one triple per entity and per relation in train, draw valid/test from the
    rest. Every entity and relation of valid/test therefore also occurs in train."""
    n = len(triples)
    triples = triples[rng.permutation(n)]
    forced = np.zeros(n, dtype=bool)
    ends = np.concatenate([triples[:, 0], triples[:, 2]])
    forced[np.unique(ends, return_index=True)[1] % n] = True
    forced[np.unique(triples[:, 1], return_index=True)[1]] = True
    free = np.flatnonzero(~forced)
    n_valid, n_test = round(spec.valid_fraction * n), round(spec.test_fraction * n)
    if n_valid < 1 or n_test < 1 or n_valid + n_test > len(free):
        raise DataError(f"synthetic spec: cannot draw {n_valid} valid and {n_test} test triples "
                        f"from {len(free)} that are not needed to cover train")
    train = np.ones(n, dtype=bool)
    train[free[: n_valid + n_test]] = False
    return {"train": triples[train], "valid": triples[free[:n_valid]],
            "test": triples[free[n_valid: n_valid + n_test]]}


def _modality(rng: np.random.Generator, code: np.ndarray, ring: np.ndarray, width: int,
              noise: float, missing: float, spec: SyntheticSpec) -> Modality:
    """``x = [s * code, a * ring] @ M + noise * eps`` with ``M ~ N(0, 1/rows)``; absent rows 0."""
    signal = np.concatenate([spec.type_scale * code, spec.angle_scale * ring], axis=1)
    proj = rng.standard_normal((signal.shape[1], width)) / np.sqrt(signal.shape[1])
    values = signal @ proj + noise * rng.standard_normal((len(signal), width))
    present = np.ones(len(signal), dtype=bool)
    present[rng.permutation(len(signal))[: round(missing * len(signal))]] = False
    values[~present] = 0.0
    return Modality(values=torch.from_numpy(values.astype(np.float32)),
                    present=torch.from_numpy(present))
