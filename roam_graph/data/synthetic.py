"""The embedded default graph: a seeded synthetic multimodal KG with a planted, documented signal.

``make_synthetic("default")`` needs no download and trains in minutes on a laptop CPU. Every
entity has a latent type ``(group, fine)``, a position ``theta`` on a ring and a popularity ``w``;
relation ``r`` links heads of some types to tails of other types whose ring position is close to
``theta_h + delta_r``. Image features reveal ``group`` and ``cos(j theta)``, text features reveal
``fine`` and ``sin(j theta)``: each modality alone is partial, together they are complete.

The ``routing`` preset (``SyntheticSpec.families`` set) gives every entity three independent keys
``(type, theta)`` instead: one shown by the image only, one by the text only, one by no feature.
Each relation follows one key, so which view helps depends on the query's relation: the situation
a router over expert groups exists for. docs/synthetic-graph.md gives the formulas. Generation
uses only a local ``numpy`` generator seeded from ``seed``: the same ``(preset, seed)`` always
gives identical tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch

from roam_graph.data.errors import DataError
from roam_graph.data.mmkg_data import MMKGData, Modality

CATEGORIES: tuple[str, ...] = ("1-1", "1-N", "N-1", "N-N")
#: Relation families of a ``families`` preset: the entity key that decides a relation's tails.
FAMILIES: tuple[str, ...] = ("image", "text", "structure")
#: The family of every relation of a classic preset: one key, partly shown by each modality.
MIXED = "mixed"


@dataclass(frozen=True)
class SyntheticSpec:
    """The generator's knobs (symbols as in docs/synthetic-graph.md). Types are the
    ``num_groups * fine_per_group`` pairs ``(group, fine)``; ``num_triples`` is a target before
    noise, de-duplication and splitting, capped as a block uses at most ``participation`` of a type.
    ``families`` empty (the default) is the classic generator; otherwise see ``FAMILIES``.
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
    # Families the relations are dealt over (a subset of FAMILIES); () = one mixed key.
    families: tuple[str, ...] = field(default=(), repr=False)

    @property
    def num_types(self) -> int:
        return self.num_groups * self.fine_per_group

    def __repr__(self) -> str:
        """The dataclass repr, but fields marked ``repr=False`` appear only when they differ from
        their default: prepare.py fingerprints presets by repr, so the classic presets keep
        theirs (and their caches) while a ``families`` preset is told apart."""
        shown = [f for f in fields(self) if f.repr or getattr(self, f.name) != f.default]
        body = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in shown)
        return f"{type(self).__name__}({body})"


_DEFAULT = SyntheticSpec(
    num_entities=4000, num_groups=6, fine_per_group=6, num_relations=24, types_per_relation=10,
    num_triples=45000, fan=4, participation=0.9, rank_noise=0.03, popularity=1.0,
    corrupt_fraction=0.03, valid_fraction=0.05, test_fraction=0.05, image_width=64,
    text_width=48, image_missing=0.12, text_missing=0.15, image_noise=1.0, text_noise=1.0,
    type_scale=2.0, angle_scale=1.0, harmonics=6,
)
SYNTHETIC_PRESETS: dict[str, SyntheticSpec] = {
    "tiny": SyntheticSpec(
        num_entities=480, num_groups=3, fine_per_group=3, num_relations=10, types_per_relation=4,
        num_triples=3000, fan=3, participation=0.9, rank_noise=0.03, popularity=1.0,
        corrupt_fraction=0.03, valid_fraction=0.08, test_fraction=0.08, image_width=16,
        text_width=12, image_missing=0.12, text_missing=0.15, image_noise=0.6, text_noise=0.6,
        type_scale=2.0, angle_scale=1.0, harmonics=6,
    ),
    "default": _DEFAULT,
    "routing": replace(_DEFAULT, families=FAMILIES),
}


@dataclass(frozen=True)
class SyntheticTruth:
    """The hidden variables behind a synthetic graph (for tests and probes; models never see it).

    Attributes:
        entity_type: int64 ``[E]``, ``group * fine_per_group + fine``; for a ``families`` preset
            the type of the structure key (the one no feature shows).
        angle: float64 ``[E]``, the ring position ``theta`` in ``[0, 2 pi)`` (structure key for a
            ``families`` preset).
        popularity: float64 ``[E]``, the popularity weight ``w``.
        relation_category: relation id -> one of ``CATEGORIES``.
        relation_shift: float64 ``[R]``, the ring shift ``delta_r``.
        head_types / tail_types: int64 ``[R, types_per_relation]``; relation ``r`` links head type
            ``head_types[r, b]`` to tail type ``tail_types[r, b]`` (types of its family's key).
        relation_family: relation id -> the key deciding its tails: ``MIXED`` for every relation
            of a classic preset, else one of ``FAMILIES``.
        key_type / key_angle: family -> int64 / float64 ``[E]``, every entity's key of that family
            (``{MIXED: ...}`` for a classic preset, one entry per ``FAMILIES`` otherwise), so
            ``key_type[relation_family[r]]`` is what relation ``r`` matches on for any preset.
    """

    entity_type: torch.Tensor
    angle: torch.Tensor
    popularity: torch.Tensor
    relation_category: tuple[str, ...]
    relation_shift: torch.Tensor
    head_types: torch.Tensor
    tail_types: torch.Tensor
    relation_family: tuple[str, ...]
    key_type: dict[str, torch.Tensor]
    key_angle: dict[str, torch.Tensor]


@dataclass(frozen=True)
class _Plan:
    """Per-relation choices drawn before any triple: category, family, type blocks, ring shift."""

    category: np.ndarray  # [R] index into CATEGORIES
    family: tuple[str, ...]  # [R] key each relation matches on
    head_types: np.ndarray  # [R, B]
    tail_types: np.ndarray  # [R, B]
    shift: np.ndarray  # [R]
    base: int  # block size n


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
    """Generate a graph from an explicit ``spec``; deterministic in ``(spec, seed)``.

    The random draws happen in one fixed order (keys, popularity, relations, blocks, corruption,
    split, image, text); a classic spec draws exactly what the first version of this module did.
    """
    unknown = sorted(set(spec.families) - set(FAMILIES))
    if unknown or len(set(spec.families)) != len(spec.families):
        raise DataError(f"synthetic spec: families must be distinct values of {FAMILIES}, "
                        f"not {spec.families}")
    rng = np.random.default_rng(seed)
    E = spec.num_entities
    keys = {key: _entity_key(rng, E, spec.num_types)
            for key in (FAMILIES if spec.families else (MIXED,))}
    popularity = np.exp(spec.popularity * rng.standard_normal(E))
    plan = _relation_plan(spec, rng, keys)
    splits = _split(spec, rng, _triples(spec, rng, plan, keys, popularity))
    width_e, width_r = len(str(E - 1)), len(str(spec.num_relations - 1))
    data = MMKGData(
        name=name,
        entity_names=tuple(f"e{i:0{max(width_e, 5)}d}" for i in range(E)),
        relation_names=tuple(f"r{i:0{max(width_r, 2)}d}" for i in range(spec.num_relations)),
        splits={k: torch.from_numpy(v) for k, v in splits.items()},
        modalities=_features(spec, rng, keys),
    )
    entity_type, theta = keys[MIXED if MIXED in keys else "structure"]
    truth = SyntheticTruth(
        entity_type=torch.from_numpy(entity_type), angle=torch.from_numpy(theta),
        popularity=torch.from_numpy(popularity),
        relation_category=tuple(CATEGORIES[c] for c in plan.category),
        relation_shift=torch.from_numpy(plan.shift),
        head_types=torch.from_numpy(plan.head_types), tail_types=torch.from_numpy(plan.tail_types),
        relation_family=plan.family,
        key_type={k: torch.from_numpy(kind) for k, (kind, _) in keys.items()},
        key_angle={k: torch.from_numpy(angle) for k, (_, angle) in keys.items()},
    )
    return data, truth


def _entity_key(rng: np.random.Generator, E: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    """One key per entity: a type (sizes differ by at most one) and a ring position ``theta``,
    stratified within the type so each type's members are evenly spread around the circle."""
    order = rng.permutation(E)
    kind, rank = np.empty(E, dtype=np.int64), np.empty(E, dtype=np.int64)
    kind[order], rank[order] = np.arange(E) % K, np.arange(E) // K  # rank within the type
    theta = 2 * np.pi * (rank + rng.random(E)) / np.bincount(kind, minlength=K)[kind]
    return kind, theta


def _relation_plan(spec: SyntheticSpec, rng: np.random.Generator,
                   keys: dict[str, tuple[np.ndarray, np.ndarray]]) -> _Plan:
    """Deal relations a slot ``s`` (a permutation of ``0..R-1``): category ``s mod 4`` and family
    ``(s div 4) mod len(families)``, so categories and families cross evenly. Then the blocks'
    types, the ring shifts and the block size ``n``."""
    K, R, B, f = spec.num_types, spec.num_relations, spec.types_per_relation, spec.fan
    slot = rng.permutation(R)
    cats = slot % len(CATEGORIES)
    names = spec.families or (MIXED,)
    family = tuple(names[s // len(CATEGORIES) % len(names)] for s in slot)
    per_unit = np.where(cats == 3, f, 1).sum() * B  # triples per unit of the block size
    smallest = min(int(np.bincount(kind, minlength=K).min()) for kind, _ in keys.values())
    base = min(spec.num_triples // per_unit, int(spec.participation * smallest)) // f * f
    if B > K:
        raise DataError(f"synthetic spec: {B} blocks per relation need at least {B} types, not {K}")
    if base < f:
        raise DataError(f"synthetic spec: {smallest} entities per type are too few (fan {f})")
    head_types = np.stack([rng.choice(K, B, replace=False) for _ in range(R)])
    tail_types = np.stack([rng.choice(K, B, replace=False) for _ in range(R)])
    shift = 2 * np.pi * rng.random(R)
    return _Plan(cats, family, head_types.astype(np.int64), tail_types.astype(np.int64), shift,
                 base)


def _triples(spec: SyntheticSpec, rng: np.random.Generator, plan: _Plan,
             keys: dict[str, tuple[np.ndarray, np.ndarray]],
             popularity: np.ndarray) -> np.ndarray:
    """Unique ``(h, r, t)`` rows: every block of every relation on its family's key, then tail
    corruption, without self-loops and duplicates."""
    E, R = spec.num_entities, spec.num_relations
    rings = {}
    for key, (kind, theta) in keys.items():
        members = [np.flatnonzero(kind == k) for k in range(spec.num_types)]
        rings[key] = [ids[np.argsort(theta[ids])] for ids in members]  # each type by angle
    blocks = [_block(spec, rng, plan, r, b, rings[plan.family[r]], keys[plan.family[r]][1],
                     popularity)
              for r in range(R) for b in range(spec.types_per_relation)]
    triples = np.concatenate(blocks).astype(np.int64)
    corrupt = rng.random(len(triples)) < spec.corrupt_fraction
    triples[corrupt, 2] = rng.integers(0, E, int(corrupt.sum()))
    triples = triples[triples[:, 0] != triples[:, 2]]
    row_ids = (triples[:, 0] * R + triples[:, 1]) * E + triples[:, 2]
    return triples[np.unique(row_ids, return_index=True)[1]]


def _block(spec: SyntheticSpec, rng: np.random.Generator, plan: _Plan, r: int, b: int,
           rings: list[np.ndarray], theta: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Triples of block ``(r, b)``: stratified heads and tails of its two types, matched around
    the ring so that ``theta_t ~ theta_h + delta_r``; popularity sizes the "one" side's arcs."""
    f, cat, base = spec.fan, plan.category[r], plan.base
    n_head = base // f if cat == 1 else base
    n_tail = base // f if cat == 2 else base
    k = f if cat == 3 else 1
    heads = _stratified(rng, rings[plan.head_types[r, b]], n_head)
    tails = _stratified(rng, rings[plan.tail_types[r, b]], n_tail)
    hkey = theta[heads] + plan.shift[r] + spec.rank_noise * rng.standard_normal(n_head)
    tkey = theta[tails] + spec.rank_noise * rng.standard_normal(n_tail)
    heads = heads[np.argsort(hkey % (2 * np.pi))]
    tails = tails[np.argsort(tkey % (2 * np.pi))]
    if cat == 0:  # 1-1: the i-th head takes the i-th tail
        h_at = t_at = np.arange(n_head)
    elif cat == 1:  # 1-N: every tail takes the head whose weighted arc covers it
        h_at = _arc(popularity[heads], (np.arange(n_tail) + 0.5) / n_tail)
        t_at = np.arange(n_tail)
    else:  # N-1, N-N: every head takes k consecutive tails from its weighted arc on
        first = _arc(popularity[tails], (np.arange(n_head) + 0.5) / n_head) - (k - 1) // 2
        h_at = np.repeat(np.arange(n_head), k)
        t_at = ((first[:, None] + np.arange(k)) % n_tail).ravel()
    return np.stack([heads[h_at], np.full(len(h_at), r), tails[t_at]], 1)


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


def _features(spec: SyntheticSpec, rng: np.random.Generator,
              keys: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Modality]:
    """Image and text features. Classic: the image shows ``group`` and the cosines of the one key,
    the text ``fine`` and the sines. ``families``: each modality shows its own key completely
    (group and fine one-hots, cosines and sines) and nothing of the other two keys."""
    widths = {"image": (spec.image_width, spec.image_noise, spec.image_missing),
              "text": (spec.text_width, spec.text_noise, spec.text_missing)}
    if MIXED in keys:
        kind, theta = keys[MIXED]
        group, fine = np.divmod(kind, spec.fine_per_group)
        wave = theta[:, None] * np.arange(1, spec.harmonics + 1)
        return {"image": _modality(rng, np.eye(spec.num_groups)[group], np.cos(wave),
                                   *widths["image"], spec),
                "text": _modality(rng, np.eye(spec.fine_per_group)[fine], np.sin(wave),
                                  *widths["text"], spec)}
    modalities = {}
    for modality in ("image", "text"):
        kind, theta = keys[modality]
        group, fine = np.divmod(kind, spec.fine_per_group)
        code = np.concatenate([np.eye(spec.num_groups)[group], np.eye(spec.fine_per_group)[fine]],
                              axis=1)
        wave = theta[:, None] * np.arange(1, spec.harmonics + 1)
        ring = np.concatenate([np.cos(wave), np.sin(wave)], axis=1)
        modalities[modality] = _modality(rng, code, ring, *widths[modality], spec)
    return modalities


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
