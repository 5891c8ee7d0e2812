"""llm_split: a real causal LM cut in two, LoRA on both parts, the split step, its measured costs, and data.

Nothing here knows about time or radio: the simulator asks for a step and gets
back tensors, FLOPs counted on the real modules and payload bytes.
"""

from .batches import ClientBatches, eval_batches
from .encoding import IGNORE_INDEX, PromptEncoder
from .evaluate import EvalResult, evaluate_label_token
from .fedavg import fedavg_state_dicts
from .flops import FlopCounter, StepFlops, analytic_lora_step_flops
from .lora import LoraSettings
from .models import DEFAULT_MODEL, cache_dir, load_causal_lm, num_layers, tiny_causal_lm
from .ortho import add_ortho_grads, lora_pairs, ortho_penalty, ortho_penalty_grads
from .partition import partition_dirichlet, partition_iid
from .profile import profile_costs, synthetic_batch
from .aggregate import average_product, average_product_with_errors, complete, merge
from .sparsify import Selection, component_importance, dense_selection, randomk_select, soft_select, topk_select
from .payload import CutMessage, ServerReply, state_dict_nbytes, tensor_nbytes
from .split import ClientPart, ServerPart, split_causal_lm
from .tasks import TASKS, Task, load_task
from .trainer import SplitLoRATrainer

__all__ = [
    "DEFAULT_MODEL", "IGNORE_INDEX", "TASKS", "ClientBatches", "ClientPart", "CutMessage", "EvalResult",
    "FlopCounter", "LoraSettings", "PromptEncoder", "ServerPart", "ServerReply", "SplitLoRATrainer", "StepFlops",
    "Task", "analytic_lora_step_flops", "cache_dir", "eval_batches", "evaluate_label_token",
    "fedavg_state_dicts", "load_causal_lm", "load_task", "num_layers", "partition_dirichlet", "partition_iid", "profile_costs", "synthetic_batch",
    "split_causal_lm", "state_dict_nbytes", "tensor_nbytes", "tiny_causal_lm",
    "Selection", "add_ortho_grads", "average_product", "average_product_with_errors", "component_importance",
    "complete", "dense_selection", "lora_pairs", "merge", "ortho_penalty", "ortho_penalty_grads", "randomk_select",
    "soft_select", "topk_select",
]
