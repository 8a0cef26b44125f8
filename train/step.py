"""One optimisation step and one evaluation pass, shared by the trainer, smoke and benchmarks.

Mixed precision: bf16 autocast needs no loss scaling; fp16 uses a GradScaler. CPU runs fp32
(CPU autocast is slower than fp32 on most CPUs and fp16 is poorly supported there).
``torch.compile`` compiles lazily, so a failure surfaces on the first step: it then falls back to
the eager module (which shares the parameters) with one warning and never ends the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

from sweepkit.train.distributed import World
from sweepkit.train.errors import UserError

log = logging.getLogger("sweepkit")

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "device=cuda but no CUDA device is visible; set device: auto or cpu, or request a GPU"
        )
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def resolve_precision(requested: str, device: torch.device) -> str:
    if device.type != "cuda" and requested != "fp32":
        log.info("precision %s applies on CUDA; this %s run uses fp32", requested, device.type)
        return "fp32"
    return requested


class TrainStep:
    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        device: torch.device,
        precision: str,
        label_smoothing: float = 0.0,
        grad_clip: float = 0.0,
        compile: bool = False,
        compile_mode: str = "default",
    ):
        self.model = model
        self.optimizer = optimizer
        self.device = device
        self.precision = resolve_precision(precision, device)
        self.autocast = self.precision != "fp32"
        self.dtype = DTYPES[self.precision]
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.grad_clip = grad_clip
        self.forward: nn.Module = model
        self.compiled = False
        if compile:
            mode = None if compile_mode == "default" else compile_mode
            self.forward = torch.compile(model, mode=mode)  # type: ignore[assignment]
            self.compiled = True

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.autocast):
            return self.criterion(self.forward(x), y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Run one step; returns the (detached, on-device) loss without synchronising."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        try:
            loss = self._loss(x, y)
        except Exception as err:  # compile errors surface here, at the first call
            if not self.compiled:
                raise
            log.warning(
                "torch.compile failed (%s: %s); continuing in eager mode",
                err.__class__.__name__,
                str(err).splitlines()[0] if str(err) else "",
            )
            self.forward, self.compiled = self.model, False
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._loss(x, y)
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    precision: str,
    world: World | None = None,
) -> tuple[float, float]:
    """(mean loss, accuracy in percent) over ``batches``; never augmented, eager module.

    In a data-parallel run each rank passes its part of the split and gets the whole split's
    figures (the sums are all-reduced)."""
    model.eval()
    precision = resolve_precision(precision, device)
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    for x, y in batches:
        with torch.autocast(device.type, dtype=DTYPES[precision], enabled=precision != "fp32"):
            logits = model(x)
        total_loss += nn.functional.cross_entropy(logits.float(), y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
    if world is not None:
        total_loss, correct, count_t = world.sum(
            total_loss, correct, torch.tensor(seen, device=device)
        )
        seen = int(count_t)
    if seen == 0:
        return float("nan"), float("nan")
    return float(total_loss) / seen, 100.0 * float(correct) / seen
