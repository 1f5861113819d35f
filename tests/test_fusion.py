"""The modality attention (Eq. 4) over candidates: the broadcast form equals the general one."""

from __future__ import annotations

import pytest
import torch

from roam_graph.model.fusion import ModalityAttention


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_candidate_weights_equal_the_masked_softmax_of_the_summed_logits(
        temperature: float) -> None:
    generator = torch.Generator().manual_seed(0)
    attention = ModalityAttention(3, 8, 8, temperature, noise=False, use_relation=True)
    entity_terms = torch.randn(3, 6, generator=generator)          # [M, N]
    relation_terms = torch.randn(4, 3, generator=generator)        # [b, M]
    present = torch.ones(3, 6, dtype=torch.bool)
    present[0, 1] = present[2, 2] = False                          # one modality missing
    present[:, 5] = False                                          # an entity with none
    general = attention.weights(entity_terms[None] + relation_terms[:, :, None], present[None],
                                dim=1)
    broadcast = attention.candidate_weights(entity_terms, relation_terms, present)
    assert torch.allclose(broadcast, general, atol=1e-7)
    assert torch.all(broadcast[:, 0, 1] == 0) and torch.all(broadcast[:, :, 5] == 0)
    assert torch.allclose(broadcast[:, :, :5].sum(dim=1), torch.ones(4, 5))
