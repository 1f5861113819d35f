"""The ROAM edge-scoring module: MoSEG experts (Eq. 2-4) -> ReGOR routing (Eq. 6-8) -> Tucker.

Every query ``(h, r)`` is routed to an option (an expert group for MoSEG; per modality for the
MGE/SEP ablations). The head is encoded by that option's experts and fused by relation-aware
attention; so is every candidate tail, under the query's relation and option (Eq. 3 applied to
the candidate side). Scoring uses the separable form

    s(q, t) = sum_m w_m(t | q) * (x_q . v_tm^(o_qm)),
    w(t | q) = softmax_m(a_m . v_tm + b_m . r_q + c_m)

so no ``[batch x entities x dim]`` tensor is built: per modality, one matmul per option plus a
``[batch x entities x M]`` softmax. ``candidate_encoding="relation_agnostic"`` drops ``b_m.r_q``
from the candidate side (MoMoK's cheaper choice) and, for MoSEG, scores with one matmul per group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from roam_graph.data.mmkg_data import Modality
from roam_graph.model.config import ModelConfig
from roam_graph.model.contract import KGModel
from roam_graph.model.experts import ExpertBank
from roam_graph.model.fusion import ModalityAttention
from roam_graph.model.inputs import ModalityInputs
from roam_graph.model.interaction import (
    RelationGroups,
    TuckerInteraction,
    grouped_matmul,
    relation_groups,
    select_options,
)
from roam_graph.model.outputs import (
    CandidateEncoding,
    ModelOutput,
    RoutingSignal,
    detach_encoding,
    select_entities,
)
from roam_graph.model.routing import (
    BalancingPrices,
    GroupRepresentation,
    RelationConditionedCost,
    Routing,
    centre_costs,
    route,
)


@dataclass(frozen=True)
class Queries:
    """Everything about a batch of queries that scoring under any option needs."""
    head: CandidateEncoding          # the heads' encoding under every option
    relation_vectors: torch.Tensor   # relation embeddings [B, d_r]
    groups: RelationGroups           # the distinct relations (Tucker's W_r once each)
    unique_relation_vectors: torch.Tensor   # their embeddings [U, d_r]
    logits: torch.Tensor             # query-side attention logits [B, M, O] (Eq. 4)
    candidate_terms: torch.Tensor    # relation half of the candidates' logits [B, M]

    def first(self, rows: int) -> Queries:
        head = self.head
        return Queries(CandidateEncoding(head.raw[:rows], head.experts_out[:rows],
                                         head.entity_terms[:rows], head.present[:rows], None),
                       self.relation_vectors[:rows], self.groups.rows(rows),
                       self.unique_relation_vectors, self.logits[:rows],
                       self.candidate_terms[:rows])


class RoamModel(KGModel):
    def __init__(self, config: ModelConfig, num_entities: int, num_relations: int,
                 features: Mapping[str, Modality], seed: int = 0) -> None:
        super().__init__()
        names = self.use_modalities(config, features)
        m_count, groups, layout = len(names), config.num_groups, config.expert_layout
        if config.routing != "top1" and layout != "moseg":
            raise ValueError(f"{config.routing} routing is defined for the MoSEG layout only")
        self.routing_hardness = 1.0   # routing: anneal (begin_epoch); top-1 unless annealing
        options = m_count * groups if layout == "sep" else groups
        expert_of = (torch.arange(options).expand(m_count, options) if layout == "sep"
                     else torch.arange(m_count * groups).view(m_count, groups))
        self.register_buffer("expert_of", expert_of.contiguous(), persistent=False)
        self.num_routers = 1 if layout == "moseg" else m_count
        dim, rdim = config.dim, config.relation_dim
        self.inputs = ModalityInputs(num_entities, dim, names, features,
                                     config.finetune_features, config.input_noise, seed,
                                     config.feature_width)
        self.experts = ExpertBank(m_count * groups, dim, config.expert_hidden, config.expert_form)
        self.relations = nn.Embedding(num_relations, rdim)
        nn.init.xavier_normal_(self.relations.weight)
        self.attention = ModalityAttention(m_count, dim, rdim, config.attention_temperature,
                                           config.attention_noise, config.fusion_relation,
                                           self.inputs.some_entity_lacks_every_modality())
        with_relation = config.cost_input == "raw" or (config.cost_input == "fused"
                                                        and layout == "moseg")
        query_dim = dim + rdim if with_relation else dim
        group_dim = query_dim if config.cost_function == "cosine" else dim
        self.group_representation = GroupRepresentation(
            self.experts.summary_width, group_dim, config.cost_hidden, self.num_routers, options,
            config.group_rep, pool_modalities=layout == "moseg")
        self.cost = RelationConditionedCost(query_dim, group_dim, config.cost_hidden,
                                            config.cost_function)
        self.relation_to_query = (nn.Linear(rdim, dim)
                                  if layout != "moseg" and config.cost_input == "fused" else None)
        self.tucker = TuckerInteraction(dim, rdim, config.input_dropout, config.hidden_dropout1,
                                        config.hidden_dropout2)
        # evaluation routes like the training plan did (routing.BalancingPrices); TKSR has no OT
        self.prices = (BalancingPrices(self.num_routers, options)
                       if config.eval_routing == "balanced" and config.solver != "tksr" else None)

    # -- encoders ----------------------------------------------------------------------------
    def encode_entities(self, ids: torch.Tensor | None = None) -> CandidateEncoding:
        """Experts' outputs for entities (all if ``ids`` is None) under every option (Eq. 2)."""
        raw, present = self.inputs(ids)
        experts_out = self.experts.apply_table(raw, self.expert_of)        # [n, M, O, d]
        return CandidateEncoding(raw, experts_out, self.attention.entity_terms(experts_out),
                                 present, ids)

    def _routing_queries(self, head: CandidateEncoding, relation_vectors: torch.Tensor,
                         query_logits: torch.Tensor) -> torch.Tensor:
        """The f(e_i, r_j) side of the cost (Eq. 6), ``[B, G, O or 1, d_q]``, per cost_input."""
        kind, config = self.config.cost_input, self.config
        if config.expert_layout == "moseg":
            if kind in ("fused", "fused_entity", "fused_no_relation"):
                logits = query_logits if kind != "fused_no_relation" else (
                    head.entity_terms
                    + self.attention.relation_terms(relation_vectors, False)[:, :, None])
                weights = self.attention.weights(logits, head.present[:, :, None], dim=1)
                fused = (weights.unsqueeze(-1) * head.experts_out).sum(dim=1)   # [B, O, d]
                if kind == "fused":  # f(e_i, r_j) = [e~_i^(k) || r_j]: r reaches phi directly
                    beside = relation_vectors[:, None].expand(-1, fused.shape[1], -1)
                    fused = torch.cat([fused, beside], dim=-1)
                return fused.unsqueeze(1)
            present = head.present.unsqueeze(-1).to(head.raw.dtype)
            mean = (head.raw * present).sum(dim=1) / present.sum(dim=1).clamp_min(1.0)
            query = torch.cat([mean, relation_vectors], dim=-1) if kind == "raw" else mean
            return query[:, None, None, :]
        if kind == "fused":
            return head.experts_out + self.relation_to_query(relation_vectors)[:, None, None, :]
        if kind in ("fused_entity", "fused_no_relation"):
            return head.experts_out
        raw = head.raw
        if kind == "raw":
            beside = relation_vectors[:, None, :].expand(-1, raw.shape[1], -1)
            raw = torch.cat([raw, beside], dim=-1)
        return raw[:, :, None, :]

    def routing_cost(self, head: CandidateEncoding, relation_vectors: torch.Tensor,
                     query_logits: torch.Tensor) -> torch.Tensor:
        """``c | r`` of Eq. 6 for every query and option, ``[B, G, O]``; centred per query
        when ``cost_centring``. Under the critic signal phi and g are trained by
        ``routing_critic_loss`` alone, so their inputs (queries, expert summaries) are detached:
        routing does not pull on the representations the scorer uses."""
        summaries = self.experts.parameter_summary()[self.expert_of]       # [M, O, S]
        if self.config.cost_signal == "critic":
            head, relation_vectors = detach_encoding(head), relation_vectors.detach()
            query_logits, summaries = query_logits.detach(), summaries.detach()
        groups = self.group_representation(summaries)                      # [G, O, d_g]
        cost = self.cost(self._routing_queries(head, relation_vectors, query_logits), groups)
        return centre_costs(cost) if self.config.cost_centring else cost

    # -- forward -----------------------------------------------------------------------------
    def forward(self, heads: torch.Tensor, relations: torch.Tensor,
                candidates: torch.Tensor | None = None,
                candidate_encoding: CandidateEncoding | None = None,
                groups: RelationGroups | None = None) -> ModelOutput:
        """Scores of tails for queries ``(heads, relations)``: against all entities ``[B, N]``,
        or against ``candidates [B, C]``. ``candidate_encoding`` (from ``encode_entities()``)
        may be passed in at evaluation to encode all entities once for many batches."""
        encoded, inverse = self._candidates(candidates, candidate_encoding)
        queries = self._queries(self._head_encoding(encoded, heads), relations, groups)
        cost = self.routing_cost(queries.head, queries.relation_vectors, queries.logits)
        routing = self._route(cost)
        scores, head_modality_weights = None, None
        for option, weight, shared in self._routes(routing.weights):
            part, weights = self._score_option(queries, option, weight, encoded, inverse,
                                               shared)
            scores = part if scores is None else scores + part
            # introspection: the modality weights of the options, as the scores mix them
            weights = weight.detach() * weights if shared is not None else weights
            head_modality_weights = weights if head_modality_weights is None \
                else head_modality_weights + weights
        selected = routing.weights.argmax(dim=-1)
        signal = None
        if self.training and self.config.cost_signal == "critic" and cost.shape[-1] > 1:
            rows = min(self.config.critic_queries, len(heads))
            signal = RoutingSignal(cost[:rows], self._option_scores(
                queries.first(rows), selected[:rows], encoded,
                None if inverse is None else inverse[:rows]))
        return ModelOutput(scores=scores, head_scores=(scores,), ot_loss=routing.ot_loss,
                           routing=routing, selected=selected,
                           modality_weights=head_modality_weights, routing_signal=signal)

    @torch.no_grad()
    def score_every_option(self, heads: torch.Tensor, relations: torch.Tensor,
                           candidate_encoding: CandidateEncoding | None = None
                           ) -> tuple[torch.Tensor, Routing]:
        """Diagnostics: scores of all tails ``[B, G, O, N]`` had each router chosen each option
        (the others keeping their choice), and the routing itself, as at evaluation (call in
        eval mode)."""
        encoded = candidate_encoding or self.encode_entities()
        queries = self._queries(self._head_encoding(encoded, heads), relations)
        routing = self._route(self.routing_cost(queries.head, queries.relation_vectors,
                                                queries.logits))
        selected = routing.weights.argmax(dim=-1)
        return self._option_scores(queries, selected, encoded, None), routing

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """``routing: anneal``: the hardness of this epoch, 0 at the first epoch rising linearly
        to 1 (top-1) after ``anneal_fraction`` of the epochs."""
        span = max(self.config.anneal_fraction * epochs, 1e-9)
        self.routing_hardness = min(1.0, (epoch - 1) / span)

    def _head_encoding(self, encoded: CandidateEncoding, heads: torch.Tensor
                       ) -> CandidateEncoding:
        """The heads' encoding: rows of an all-entity encoding when there is one (1-N training,
        evaluation), so the experts do not run on the heads a second time."""
        return (select_entities(encoded, heads) if encoded.ids is None
                else self.encode_entities(heads))

    def _queries(self, head: CandidateEncoding, relations: torch.Tensor,
                 groups: RelationGroups | None = None) -> Queries:
        """Everything scoring needs about queries whose heads are encoded as ``head``."""
        relation_vectors = self.relations(relations)
        groups = groups or relation_groups(relations)
        relation_terms = self.attention.relation_terms(relation_vectors)   # [B, M]
        logits = (head.entity_terms + relation_terms[:, :, None]
                  + self.attention.noise_terms(head.experts_out, relation_vectors))
        candidate_terms = (relation_terms if self.config.candidate_encoding == "relation_aware"
                           else self.attention.relation_terms(relation_vectors, False))
        return Queries(head, relation_vectors, groups, self.relations(groups.unique), logits,
                       candidate_terms)

    def _route(self, cost: torch.Tensor) -> Routing:
        """Route (routing.route) and, in training, fold the batch's prices into the running
        ones. With the critic signal nothing but ``routing_critic_loss`` trains the cost, so the
        plan is solved on a detached cost (no autograd through the Sinkhorn iterations)."""
        config = self.config
        by_ot = config.cost_signal == "ot"
        routing = route(cost if by_ot else cost.detach(), config.solver, config.ot_epsilon,
                        config.sinkhorn_iterations, config.routing, self.training,
                        None if self.prices is None else self.prices.prices,
                        straight_through=by_ot, hardness=self.routing_hardness)
        if self.prices is not None and routing.prices is not None:
            self.prices.fold(routing.prices)
        return routing

    def _candidates(self, candidates: torch.Tensor | None,
                    candidate_encoding: CandidateEncoding | None
                    ) -> tuple[CandidateEncoding, torch.Tensor | None]:
        """Encoded candidates and, for given candidates, the index of each into them."""
        if candidates is None:
            return candidate_encoding or self.encode_entities(), None
        unique, inverse = torch.unique(candidates, return_inverse=True)
        return self.encode_entities(unique), inverse

    def _score_option(self, queries: Queries, option: torch.Tensor, weight: torch.Tensor,
                      encoded: CandidateEncoding, inverse: torch.Tensor | None,
                      shared: int | None = None, matrices: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of the queries routed to ``option [B, M]`` (Eq. 3-4 then Tucker), and the
        head's modality weights ``[B, M]``. ``shared``: the one option every query and modality
        takes, when the caller knows it (soft routing, the critic): no grouping then.
        ``matrices``: Tucker's ``W_r`` of the batch's relations, when already contracted."""
        modality_weights = self.attention.weights(
            select_options(queries.logits, option), queries.head.present, dim=1)
        fused_head = (modality_weights.unsqueeze(-1)
                      * select_options(queries.head.experts_out, option)).sum(dim=1)
        query = (self.tucker.query(fused_head, queries.unique_relation_vectors,
                                   queries.groups.inverse) if matrices is None
                 else self.tucker.apply_matrices(fused_head, matrices, queries.groups.inverse))
        if inverse is None:
            part = self._score_all(query, option, weight, encoded, queries.candidate_terms,
                                   shared)
        else:
            part = self._score_given(query, option, weight, encoded, inverse,
                                     queries.candidate_terms)
        return part, modality_weights

    @torch.no_grad()
    def _option_scores(self, queries: Queries, selected: torch.Tensor,
                       encoded: CandidateEncoding, inverse: torch.Tensor | None) -> torch.Tensor:
        """Scores ``[S, G, O, C]`` of every query under every option of every router, the
        other routers keeping their ``selected [S, G]`` option. No gradient; Tucker runs in
        eval mode (no dropout, batch-norm statistics neither used from nor added to the batch),
        so scoring the alternatives leaves training untouched."""
        m_count, routers, options = (len(self.modality_names), self.num_routers,
                                     self.expert_of.shape[1])
        chosen = selected.expand(-1, m_count) if routers == 1 else selected
        ones = torch.ones_like(chosen, dtype=queries.relation_vectors.dtype)
        was_training = self.tucker.training
        self.tucker.eval()
        try:
            # W_r does not depend on the option: contracted once for every option below
            matrices = self.tucker.relation_matrices(queries.unique_relation_vectors)
            table = []
            for router in range(routers):
                for o in range(options):
                    option = chosen.clone()
                    option[:, slice(None) if routers == 1 else router] = o
                    table.append(self._score_option(queries, option, ones, encoded, inverse,
                                                    o if routers == 1 else None, matrices)[0])
        finally:
            self.tucker.train(was_training)
        return torch.stack(table, dim=1).view(len(chosen), routers, options, -1)

    def _routes(self, weights: torch.Tensor
                ) -> list[tuple[torch.Tensor, torch.Tensor, int | None]]:
        """``(option [B, M], weight [B, M], shared option or None)``: one for top-1 routing,
        O for soft (and for annealing before it is hard), each option shared by every query."""
        m_count = len(self.modality_names)
        mixed = self.config.routing == "anneal" and self.training and self.routing_hardness < 1
        if self.config.routing == "soft" or mixed:
            return [(torch.full((weights.shape[0], m_count), o, device=weights.device),
                     weights[:, 0, o : o + 1].expand(-1, m_count), o)
                    for o in range(weights.shape[2])]
        chosen = weights.argmax(dim=-1)                                    # [B, G]
        weight = weights.gather(2, chosen.unsqueeze(-1)).squeeze(-1)       # [B, G] (value 1)
        return [(chosen.expand(-1, m_count), weight.expand(-1, m_count), None)]

    def _score_all(self, query: torch.Tensor, option: torch.Tensor, weight: torch.Tensor,
                   encoded: CandidateEncoding, candidate_terms: torch.Tensor,
                   shared: int | None = None) -> torch.Tensor:
        """Separable 1-N scores ``[B, N]`` (module docstring)."""
        same_option = self.config.expert_layout == "moseg"
        if same_option and self.config.candidate_encoding == "relation_agnostic":
            # w depends on (t, option) only: fuse candidates once per option, one matmul each
            logits = encoded.entity_terms + self.attention.bias[None, :, None]   # [N, M, O]
            w = self.attention.weights(logits, encoded.present[:, :, None], dim=1)
            fused = (w.unsqueeze(-1) * encoded.experts_out).sum(dim=1)           # [N, O, d]
            products = (query @ fused[:, shared].T if shared is not None
                        else grouped_matmul(query, option[:, 0], fused))
            return weight[:, :1] * products
        if same_option and shared is not None:
            return self._group_scores(query, shared, candidate_terms, weight[:, 0], encoded)
        if same_option:
            return self._score_all_grouped(query, option[:, 0], weight[:, 0], encoded,
                                           candidate_terms)
        m_count = option.shape[1]
        # [B, M, N] layout: the softmax over modalities runs with entities contiguous
        logits = torch.stack([encoded.entity_terms[:, m, :][:, option[:, m]].T
                              for m in range(m_count)], dim=1)
        w = self.attention.weights(logits + candidate_terms[:, :, None],
                                   encoded.present.T.unsqueeze(0), dim=1)
        partial = torch.stack([grouped_matmul(query, option[:, m], encoded.experts_out[:, m])
                               for m in range(m_count)], dim=1)
        return (w * partial * weight[:, :, None]).sum(dim=1)

    def _score_all_grouped(self, query: torch.Tensor, option: torch.Tensor,
                           weight: torch.Tensor, encoded: CandidateEncoding,
                           candidate_terms: torch.Tensor) -> torch.Tensor:
        """MoSEG (one option for all modalities): queries sorted by group once; per group one
        ``[b, d] x [d, M * N]`` matmul gives every modality's partial score at once. Tensors
        are laid out ``[b, M, N]`` so the softmax over the few modalities runs along a strided
        axis with the long entity axis contiguous (a softmax over a last axis of size 3 is
        several times slower). ``top1_scoring: dense`` scores every group for every query
        instead: no host sync, O times the products."""
        if self.config.top1_scoring == "dense":
            # no host sync: every query against every group's candidates, keeping its own
            return sum((option == o).unsqueeze(1)
                       * self._group_scores(query, o, candidate_terms, weight, encoded)
                       for o in range(encoded.experts_out.shape[2]))
        order = torch.argsort(option)
        # the one host sync of a grouped top-1 step: the groups' sizes (docs/benchmarks.md)
        counts = torch.bincount(option, minlength=encoded.experts_out.shape[2]).tolist()
        blocks = [self._group_scores(q, o, relation_terms, w, encoded)
                  for o, (q, relation_terms, w) in enumerate(zip(
                      query[order].split(counts), candidate_terms[order].split(counts),
                      weight[order].split(counts), strict=True)) if counts[o]]
        return torch.cat(blocks)[torch.argsort(order)]

    def _group_scores(self, query: torch.Tensor, option: int, candidate_terms: torch.Tensor,
                      weight: torch.Tensor, encoded: CandidateEncoding) -> torch.Tensor:
        """Scores ``[b, N]`` of queries that all take MoSEG group ``option``: one
        ``[b, d] x [d, M * N]`` matmul, laid out ``[b, M, N]``."""
        vectors = encoded.by_option[option]                                  # [M, N, d]
        m_count, entities, dim = vectors.shape
        partial = (query @ vectors.view(m_count * entities, dim).T).view(-1, m_count, entities)
        attention = self.attention.candidate_weights(
            encoded.entity_terms[:, :, option].T, candidate_terms, encoded.present.T)  # [b, M, N]
        return (attention * partial).sum(dim=1) * weight.unsqueeze(1)

    def _score_given(self, query: torch.Tensor, option: torch.Tensor, weight: torch.Tensor,
                     encoded: CandidateEncoding, inverse: torch.Tensor,
                     candidate_terms: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, C]`` of given candidates (``inverse`` indexes the encoded unique ids)."""
        m_count, width = option.shape[1], inverse.shape[1]
        logits, partial = [], []
        for m in range(m_count):
            chosen = option[:, m : m + 1].expand(-1, width)
            logits.append(encoded.entity_terms[inverse, m, chosen])
            vectors = encoded.experts_out[inverse, m, chosen]                    # [B, C, d]
            partial.append(torch.einsum("bd,bcd->bc", query, vectors))
        w = self.attention.weights(torch.stack(logits, dim=-1) + candidate_terms[:, None, :],
                                   encoded.present[inverse], dim=-1)
        return (w * torch.stack(partial, dim=-1) * weight[:, None, :]).sum(dim=-1)
