"""One optimisation step and one evaluation pass, shared by the trainer, smoke and benchmarks.

Mixed precision: bf16 autocast needs no loss scaling; fp16 uses a GradScaler. CPU runs fp32
(CPU autocast is slower than fp32 on most CPUs and fp16 is poorly supported there).
``torch.compile`` compiles lazily: the forward graph at a step's forward, the backward graph at its
backward, and ``reduce-overhead`` records CUDA graphs on a later call, so a compile mode can fail
inside a step, after its forward has already moved the BatchNorm statistics. While a compiled
graph may still fail (the first ``GUARDED_CALLS`` calls of each input shape) the step keeps a copy
of the module's buffers; on a failure it puts them back, drops the gradients and runs the same step
again in the next mode: the default mode, then the eager module (which shares the parameters). The
optimiser has not stepped yet, so no step is lost or applied twice. One warning names what failed;
the run never ends over it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

import torch
from torch import nn

from sweepkit.train.distributed import World
from sweepkit.train.errors import UserError

log = logging.getLogger("sweepkit")

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# Calls of one input shape that may still compile or record: dynamo and Inductor compile at the
# first call (the backward at its first backward), CUDA graph trees warm up on the first and
# record on a later one. After that the graphs are built and a failure is a real error.
GUARDED_CALLS = 3


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
        self.compile_mode: str | None = None  # None: the eager module
        if compile:
            self._compile(compile_mode)
        self.shape_calls: Counter[tuple[object, ...]] = Counter()

    @property
    def compiled(self) -> bool:
        return self.compile_mode is not None

    def _compile(self, mode: str | None) -> None:
        """Train through ``mode``'s compiled module from the next call; None: the eager module."""
        self.compile_mode = mode
        if mode is None:
            self.forward = self.model
            return
        self.forward = torch.compile(  # type: ignore[assignment]
            self.model, mode=None if mode == "default" else mode
        )

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.autocast):
            return self.criterion(self.forward(x), y)

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(x, y)
        self.scaler.scale(loss).backward()
        return loss

    def _guarded(self, x: torch.Tensor) -> bool:
        """Whether this call may still compile or record a graph (see GUARDED_CALLS)."""
        if not self.compiled:
            return False
        key = (tuple(x.shape), x.dtype, x.device)
        self.shape_calls[key] += 1
        return self.shape_calls[key] <= GUARDED_CALLS

    def _forward_backward_or_fall_back(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Forward and backward; a failure of the compiled module puts back the buffers the failed
        forward moved and runs the same step in the next mode (default, then eager)."""
        buffers = [b.detach().clone() for b in self.model.buffers()]
        failed: list[str] = []
        while True:
            try:
                loss = self._forward_backward(x, y)
                break
            except Exception as err:
                if not self.compiled:
                    raise  # the eager module fails too: a real error, not the compiler's
                failed.append(f"mode {self.compile_mode}: {_first_line(err)}")
                with torch.no_grad():
                    for buffer, kept in zip(self.model.buffers(), buffers, strict=True):
                        buffer.copy_(kept)
                self.optimizer.zero_grad(set_to_none=True)
                # the failed graphs are dropped, so the next mode compiles from scratch
                torch._dynamo.reset()
                self._compile("default" if self.compile_mode != "default" else None)
                self.shape_calls.clear()  # the new mode compiles and records on its own calls
        if failed:
            log.warning(
                "torch.compile failed (%s); continuing %s from the same step",
                "; ".join(failed),
                "in eager mode" if not self.compiled else "with compile mode default",
            )
        return loss

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Run one step; returns the (detached, on-device) loss without synchronising."""
        self.model.train()
        if self._guarded(x):
            loss = self._forward_backward_or_fall_back(x, y)
        else:
            loss = self._forward_backward(x, y)
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{err.__class__.__name__}: {text.splitlines()[0]}" if text else err.__class__.__name__


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
