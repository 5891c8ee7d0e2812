"""Cutting a Hugging Face causal LM at a layer into a client part and a server part.

The transformer blocks are a list, so the cut is a slice (as in nanoGPT):

    client:  embeddings -> blocks[0 : s]                      -> hidden (B, T, H)
    server:  hidden     -> blocks[s : L] -> final norm -> head -> logits (B, T, V), loss

Both parts hold the original modules (no copies), so LoRA injected into a part
is also seen by the unsplit model. Each part rebuilds what the model's own
``forward`` builds before its blocks -- position ids, rotary embeddings, the
causal + padding mask -- from the same inputs and with the same transformers
functions, so ``server(client(x))`` equals ``model(x)`` exactly. Only the hidden
states, the attention mask and the labels cross the cut.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast

from cosim.errors import CosimError
from llm_split.encoding import IGNORE_INDEX

# transformers 5.x renamed the mask builders' ``past_key_values`` argument to ``cache``
# (the old name warns from 5.2x on); pass whichever this version takes.
_CACHE_ARG = "cache" if "cache" in inspect.signature(create_causal_mask).parameters else "past_key_values"


@dataclass(frozen=True)
class _Layout:
    """Where a model family keeps its parts (attribute names, read from its modeling file)."""

    stack: str  # attribute of the *ForCausalLM holding the decoder
    embed: str  # token embedding, in the stack
    blocks: str  # the nn.ModuleList of transformer blocks, in the stack
    final_norm: str  # norm applied after the last block, in the stack
    positions: str | None = None  # learned position embedding (GPT-2)
    dropout: str | None = None  # dropout applied to the embeddings
    rotary: str | None = None  # rotary embedding module, shared by all blocks
    # "causal": create_causal_mask for every block; "sliding": Mistral, a sliding
    # window mask when config.sliding_window is set; "layer_types": Qwen2/3, one
    # mask per entry of config.layer_types.
    masks: str = "causal"


_ROTARY = dict(stack="model", embed="embed_tokens", blocks="layers", final_norm="norm", rotary="rotary_emb")
LAYOUTS = {
    "llama": _Layout(**_ROTARY),
    "mistral": _Layout(**_ROTARY, masks="sliding"),
    "qwen2": _Layout(**_ROTARY, masks="layer_types"),
    "qwen3": _Layout(**_ROTARY, masks="layer_types"),
    "gpt2": _Layout(stack="transformer", embed="wte", blocks="h", final_norm="ln_f", positions="wpe", dropout="drop"),
    "gpt_neox": _Layout(
        stack="gpt_neox", embed="embed_in", blocks="layers", final_norm="final_layer_norm",
        dropout="emb_dropout", rotary="rotary_emb",
    ),
}


def model_layout(model: nn.Module) -> _Layout:
    """The layout of a supported causal LM; a CosimError naming the class otherwise."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    layout = LAYOUTS.get(model_type)
    if layout is None or not hasattr(model, layout.stack) or model.get_output_embeddings() is None:
        raise CosimError(
            f"cannot split a {type(model).__name__} (model_type {model_type!r}): supported causal LM "
            f"families are {', '.join(sorted(LAYOUTS))}"
        )
    return layout


def split_causal_lm(model: nn.Module, cut_layer: int) -> tuple[ClientPart, ServerPart]:
    """Cut ``model`` after block ``cut_layer - 1``.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM of a family in :data:`LAYOUTS` (Llama/SmolLM2, Mistral,
        Qwen2/3, GPT-2, GPT-NeoX).
    cut_layer : int
        Number of blocks run on the client, ``0 < cut_layer < num_layers``.

    Returns
    -------
    client : ClientPart
        Embeddings and blocks ``0 .. cut_layer-1``.
    server : ServerPart
        Blocks ``cut_layer .. L-1``, the final norm and the LM head.
    """
    layout = model_layout(model)
    n_layers = model.config.num_hidden_layers
    if isinstance(cut_layer, bool) or not isinstance(cut_layer, int) or not 0 < cut_layer < n_layers:
        raise CosimError(
            f"cut_layer(={cut_layer!r}) must be an integer in 1..{n_layers - 1} "
            f"(the model has {n_layers} layers)"
        )
    return ClientPart(model, layout, cut_layer), ServerPart(model, layout, cut_layer)


class _Part(nn.Module):
    """Blocks ``first_layer .. first_layer+len(blocks)-1`` of a model, run as its forward runs them."""

    def __init__(self, model: nn.Module, layout: _Layout, layers: slice):
        super().__init__()
        stack = getattr(model, layout.stack)
        self.config = model.config
        self.layout = layout
        self.first_layer = layers.start
        # A ModuleList of the same block objects: the slice is the cut.
        self.blocks = nn.ModuleList(getattr(stack, layout.blocks)[: model.config.num_hidden_layers][layers])
        self.rotary = getattr(stack, layout.rotary) if layout.rotary else None

    def _run_blocks(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Run this part's blocks on ``hidden`` (B, T, H) with a (B, T) padding mask."""
        # No cache: positions start at 0, as in the model's forward without past_key_values.
        position_ids = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)  # (1, T)
        masks = self._masks(hidden, attention_mask, position_ids)
        kwargs = {"position_ids": position_ids}
        if self.rotary is not None:
            kwargs["position_embeddings"] = self.rotary(hidden, position_ids=position_ids)  # (cos, sin)
        for mask, block in zip(masks, self.blocks):
            hidden = block(hidden, attention_mask=mask, **kwargs)
        return hidden

    def _masks(self, hidden, attention_mask, position_ids) -> list:
        """One 4-d mask (or None: plain causal, left to SDPA) per block of this part."""
        args = dict(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask,
                    position_ids=position_ids, **{_CACHE_ARG: None})
        rule = self.layout.masks
        if rule == "layer_types":
            types = self.config.layer_types[self.first_layer: self.first_layer + len(self.blocks)]
            made = {"full_attention": create_causal_mask(**args)}
            if "sliding_attention" in types:
                made["sliding_attention"] = create_sliding_window_causal_mask(**args)
            return [made[t] for t in types]
        if rule == "sliding" and getattr(self.config, "sliding_window", None) is not None:
            return [create_sliding_window_causal_mask(**args)] * len(self.blocks)
        return [create_causal_mask(**args)] * len(self.blocks)


class ClientPart(_Part):
    """The device's part: embeddings and blocks ``0 .. cut_layer-1``.

    ``forward(input_ids, attention_mask=None)`` maps (B, T) token ids and a
    (B, T) padding mask (1 = token, 0 = padding) to hidden states (B, T, H).
    """

    def __init__(self, model: nn.Module, layout: _Layout, cut_layer: int):
        super().__init__(model, layout, slice(0, cut_layer))
        stack = getattr(model, layout.stack)
        self.embed = getattr(stack, layout.embed)
        self.positions = getattr(stack, layout.positions) if layout.positions else None
        self.dropout = getattr(stack, layout.dropout) if layout.dropout else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.embed(input_ids)  # (B, T, H)
        if self.positions is not None:  # GPT-2: learned absolute positions 0..T-1
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
            hidden = hidden + self.positions(position_ids)
        if self.dropout is not None:
            hidden = self.dropout(hidden)
        return self._run_blocks(hidden, attention_mask)


#: Rows the LM head's matmul in :meth:`ServerPart.label_loss` gets at least (zero rows added).
#: With fewer (a classification batch of 4 has 4 labelled positions) MKL takes a small-matrix
#: kernel that sums each logit in another order: on SmolLM2 the loss then moved by up to
#: 6 float32 ulps (2.9e-6) from the full head's; from 16 rows on, by at most 1 (4.8e-7)
#: (``benchmarks/bench_step.py``). They cost 16 rows of the head instead of B x T.
MIN_HEAD_ROWS = 16


class ServerPart(_Part):
    """The main server's part: blocks ``cut_layer .. L-1``, final norm and LM head.

    ``forward(hidden, attention_mask=None, labels=None)`` maps hidden states
    (B, T, H) to a ``CausalLMOutputWithPast`` with ``logits`` (B, T, V) and, when
    ``labels`` (B, T) are given, ``loss``: the model's own shifted causal-LM
    cross-entropy (positions labelled -100 ignored), the same as
    ``model(input_ids, attention_mask=..., labels=...).loss``. ``logits_to_keep=n``
    computes the logits of the last ``n`` positions only (as in transformers; the
    loss then covers only those).
    """

    def __init__(self, model: nn.Module, layout: _Layout, cut_layer: int):
        super().__init__(model, layout, slice(cut_layer, model.config.num_hidden_layers))
        self.norm = getattr(getattr(model, layout.stack), layout.final_norm)
        self.lm_head = model.get_output_embeddings()
        # A plain function chosen from config.loss_type (not the model: that would
        # make the whole model a submodule of this part).
        self.loss_function = model.loss_function

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        logits_to_keep: int = 0,
    ) -> CausalLMOutputWithPast:
        hidden = self.norm(self._run_blocks(hidden, attention_mask))  # (B, T, H)
        if logits_to_keep:  # evaluation reads a few last positions: skip the head elsewhere
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)  # (B, T, V), or (B, logits_to_keep, V)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size)
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    def label_loss(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None,
                   labels: torch.Tensor) -> torch.Tensor:
        """The causal-LM loss of :meth:`forward`, with the LM head run only where it is taken.

        Position ``t`` predicts token ``t + 1``, so only the positions whose next label
        is set (not -100) need logits: the head and the cross-entropy run on those
        ``N`` rows, (N, H) -> (N, V), instead of all B x T. The mean over the same
        targets as the model's own loss; it differs from :meth:`forward`'s ``loss``
        only by float rounding (another matmul shape sums in another order). The head
        runs on at least :data:`MIN_HEAD_ROWS` rows.
        """
        hidden = self.norm(self._run_blocks(hidden, attention_mask))  # (B, T, H)
        targets = labels[:, 1:]  # (B, T-1): the label each position predicts
        taken = targets != IGNORE_INDEX
        rows = hidden[:, :-1][taken]  # (N, H)
        n = rows.shape[0]
        if n < MIN_HEAD_ROWS:  # zero rows: the matmul kernel of a full batch (see MIN_HEAD_ROWS)
            rows = torch.cat([rows, rows.new_zeros(MIN_HEAD_ROWS - n, rows.shape[1])])
        logits = self.lm_head(rows)[:n]  # (N, V)
        return self.loss_function(logits=logits, labels=None, vocab_size=self.config.vocab_size,
                                  shift_labels=targets[taken])
