"""Sub-experts (Eq. 2, experts.py): the plain form is the paper's one-hidden-layer MLP; the
residual form is the identity at initialisation and learns a correction; names are validated."""

from __future__ import annotations

import pytest
import torch

from roam_graph.model import resolve_config
from roam_graph.model.experts import ExpertBank
from roam_graph.model.roam import RoamModel

DIM, HIDDEN, EXPERTS = 6, 5, 4


def table(modalities: int = 2, options: int = 2) -> torch.Tensor:
    return torch.arange(modalities * options).view(modalities, options)


def test_plain_expert_is_the_one_hidden_layer_mlp_of_eq2() -> None:
    torch.manual_seed(0)
    bank = ExpertBank(EXPERTS, DIM, HIDDEN)
    inputs = torch.randn(3, 2, DIM)
    out = bank.apply_table(inputs, table())
    e = 3                                   # modality 1, option 1
    expected = torch.relu(inputs[:, 1] @ bank.w1[e] + bank.b1[e]) @ bank.w2[e] + bank.b2[e]
    assert torch.allclose(out[:, 1, 1], expected, atol=1e-6)
    assert not torch.allclose(out[:, 1, 1], inputs[:, 1])


def test_residual_expert_is_nearly_the_identity_and_groups_differ_at_initialisation() -> None:
    torch.manual_seed(0)
    bank = ExpertBank(EXPERTS, DIM, HIDDEN, form="residual")
    inputs = torch.randn(3, 2, DIM)
    out = bank.apply_table(inputs, table())
    identity = inputs.unsqueeze(2).expand(-1, -1, 2, -1)
    branch = (out - identity).norm(dim=-1) / identity.norm(dim=-1)
    assert float(branch.max()) < 0.05                      # close to the identity ...
    assert float(branch.mean()) > 0                        # ... but not exactly
    # the two options of a modality compute different functions: symmetry is broken
    assert not torch.allclose(out[:, :, 0], out[:, :, 1])


def test_residual_expert_learns_a_correction_on_top_of_its_input() -> None:
    torch.manual_seed(0)
    bank = ExpertBank(EXPERTS, DIM, HIDDEN, form="residual")
    inputs, target = torch.randn(8, 2, DIM), torch.randn(8, 2, 2, DIM)
    optimiser = torch.optim.Adam(bank.parameters(), lr=0.01)
    for _ in range(3):
        loss = (bank.apply_table(inputs, table()) - target).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    out = bank.apply_table(inputs, table()).detach()
    assert float(bank.w2.abs().sum()) > 0
    assert not torch.allclose(out, inputs.unsqueeze(2).expand_as(out))
    # experts of different groups stay different functions (Eq. 7 needs distinct summaries)
    summary = bank.parameter_summary()
    assert summary.shape == (EXPERTS, bank.summary_width)
    assert not torch.allclose(summary[0], summary[1])


def test_unknown_expert_forms_are_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="expert form 'deep': choose one of mlp, residual"):
        ExpertBank(EXPERTS, DIM, HIDDEN, form="deep")
    with pytest.raises(ValueError, match="expert_form='deep' is not one of mlp, residual"):
        resolve_config("roam", expert_form="deep")
    assert resolve_config("roam").expert_form == "mlp"          # Eq. 2 as printed by default


def test_with_residual_experts_the_structure_embedding_reaches_the_fusion_nearly_unchanged(
        ) -> None:
    torch.manual_seed(0)
    config = resolve_config("roam", dim=8, relation_dim=8, expert_hidden=8, cost_hidden=8,
                            num_groups=3, modalities=("structure",), expert_form="residual")
    model = RoamModel(config, 30, 4, {})
    encoded = model.encode_entities()
    weights = model.inputs.structure.weight
    for group in range(3):
        assert torch.allclose(encoded.experts_out[:, 0, group], weights, atol=0.01)
