"""Value head: zero at init, shares the trunk, and the value loss reaches it."""

import pytest
import torch
import transformers

from mathrl.value import PolicyWithValue, ValueHead


@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=64,
    )
    return transformers.LlamaForCausalLM(config).eval()


def test_value_head_is_zero_at_init_and_linear_after():
    head = ValueHead(8)
    h = torch.randn(3, 5, 8)
    assert head(h).shape == (3, 5)
    assert (head(h) == 0).all()
    # weight w = 1 everywhere, bias .5: value = Σ_k h_k + .5
    with torch.no_grad():
        head.linear.weight.fill_(1.0)
        head.linear.bias.fill_(0.5)
    torch.testing.assert_close(head(h), h.sum(-1) + 0.5)


def test_value_head_keeps_its_dtype_on_a_bf16_trunk():
    head = ValueHead(4)
    out = head(torch.randn(2, 3, 4, dtype=torch.bfloat16))
    assert out.dtype == torch.float32 and out.shape == (2, 3)


def test_policy_with_value_shares_the_trunk(tiny_llama):
    model = PolicyWithValue(tiny_llama)
    ids = torch.randint(0, 64, (2, 7))
    attn = torch.ones_like(ids)
    attn[1, :2] = 0  # a left-padded prompt
    logits, values = model(ids, attn)
    assert logits.shape == (2, 7, 64) and values.shape == (2, 7)
    assert (values == 0).all()
    with torch.no_grad():
        torch.testing.assert_close(logits, tiny_llama(input_ids=ids, attention_mask=attn).logits)
    # one trunk: the wrapper adds only the head's hidden + 1 parameters
    extra = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in tiny_llama.parameters())
    assert extra == 32 + 1


def test_value_loss_gradient_reaches_head_and_trunk(tiny_llama):
    model = PolicyWithValue(tiny_llama)
    ids = torch.randint(0, 64, (2, 5))
    _, values = model(ids, torch.ones_like(ids))
    ((values - 1.0) ** 2).mean().backward()
    head = model.value_head.linear
    assert head.weight.grad.abs().sum() > 0 and head.bias.grad.abs().sum() > 0
    # With the head at zero the trunk's first gradient from the value loss is 0 (it flows
    # through w = 0); after one head update it is not, i.e. the critic shares the trunk.
    trunk = next(model.model.model.layers[-1].parameters())
    with torch.no_grad():
        head.weight.normal_()
    model.zero_grad()
    _, values = model(ids, torch.ones_like(ids))
    ((values - 1.0) ** 2).mean().backward()
    assert trunk.grad is not None and trunk.grad.abs().sum() > 0
    model.zero_grad()
