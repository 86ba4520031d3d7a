"""The GAN game's closure: ``[loss_G, loss_D]`` at the current parameters, computing only what is asked.

A game optimizer may evaluate the closure several times in one step (see :mod:`saddlepoint.optim.base`).
Two things make the alternating scheme cost what a hand-written DCGAN loop costs, without changing a
single number it computes:

* **Lazy discriminator loss.** ``loss_D`` needs D on the real batch and the penalties; the generator's
  step does not. :class:`LazyLosses` computes that part on first access to ``losses[1]``, so an
  evaluation for the generator alone runs G and D(fake) only. (A loss whose generator term uses D(x),
  e.g. a relativistic one, sets ``generator_uses_real = True`` on the function and is always computed
  in full.)
* **Generator output reuse.** Within one step, when G's parameters are unchanged since the last
  evaluation (tracked by their in-place version counters — the discriminator just moved, say), the
  closure reuses G(z) and its autograd graph instead of running G again, and puts back what that
  forward pass left behind: G's BatchNorm buffers and the RNG state after it. Parameters, buffers and
  random streams are therefore exactly those of a fresh forward pass.

With ``pushforward=True`` (the trainer passes the optimizer's ``wants_pushforward``: CGD or ACGD with
``forward_mode: true``, their default) the returned losses also declare the generator's samples as its
**pushforward** (:class:`~saddlepoint.optim.derivatives.Pushforward`): G reaches both losses only through
x̃ = G(z), so the optimizer forms D_yx·u = ∇_D⟨∇_x̃ L, J_G u⟩ with J_G u from a tangent-only pass over the
layers the evaluation's forward pass recorded when G is a chain of standard layers
(:mod:`~saddlepoint.games.tangents`; the DCGAN and MLP generators are), and otherwise from forward-mode
differentiation through G (same parameters, noise, dropout masks and batch statistics). Not declared
under autocast, nor when a module of G cannot be replayed locally: torch's ``nn.SyncBatchNorm`` and any
module whose class declares ``supports_forward_tangents = False`` (e.g. a BatchNorm whose statistics are
all-reduced across workers). Without the declaration the closure records nothing extra.

With ``augment`` (DiffAugment, Zhao et al. 2020; :class:`~saddlepoint.data.augment.BatchAugment`) D sees
T(x) and T(G(z)) in every term: D's loss on D(T(x)) and D(T(G(z))), G's loss on D(T(G(z))), gradients
through T to G. The penalties see the composite critic D∘T at the un-augmented batches, with the real
images' parameters (as the paper's StyleGAN2 code, whose R1 is ∇_x D(T(x))). T's parameters are fixed per
closure, so every evaluation of it transforms identically; the pushforward stays G(z) (T is part of the loss).

The one observable difference from evaluating everything every time: when an evaluation skips D(x), D's
own BatchNorm running statistics see only that evaluation's fake batch. D always runs in training mode
(batch statistics), so no parameter, loss or sample depends on them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, jvp

from ..data.augment import BatchAugment
from ..optim.derivatives import Pushforward
from .tangents import ChainRecorder, ChainTangent

__all__ = ["Augmented", "GANClosure", "LazyLosses", "LossFn", "supports_forward_tangents"]

LossFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def supports_forward_tangents(net: nn.Module) -> bool:
    """Whether G's forward pass can be replayed locally for a tangent: no torch ``nn.SyncBatchNorm`` and no
    module declaring ``supports_forward_tangents = False`` (a class attribute read with getattr)."""
    return not any(isinstance(m, nn.SyncBatchNorm) or getattr(m, "supports_forward_tangents", True) is False
                   for m in net.modules())


class Augmented(nn.Module):
    """D∘T: the discriminator after a transformation (the critic penalties see under DiffAugment)."""

    def __init__(self, D: nn.Module, transform: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.D, self.transform = D, transform

    def forward(self, x: Tensor) -> Tensor:
        return self.D(self.transform(x))


class LazyLosses(Sequence[Tensor]):
    """``[loss_G, loss_D]``; ``loss_D`` is computed by ``discriminator_loss()`` when first indexed
    (or given, already computed, as ``loss_d``)."""

    def __init__(
        self, loss_g: Tensor, discriminator_loss: Callable[[], Tensor] | None, loss_d: Tensor | None = None
    ) -> None:
        self._loss_g = loss_g
        self._discriminator_loss = discriminator_loss
        self._loss_d = loss_d
        #: players that reach the losses only through one tensor (see :class:`GANClosure`)
        self.pushforward: dict[int, Pushforward] | None = None
        #: D's logits through which each player's parameters reach its adversarial loss (G: D(G(z)); D: D(x) and
        #: D(G(z))), complete once both losses are computed: the declaration Gauss–Newton curvature reads
        #: (:class:`saddlepoint.optim.newton.DeclaredLosses`); penalties are not declared
        self.outputs: dict[int, list[Tensor]] = {}

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(2))]
        if index in (0, -2):
            return self._loss_g
        if index in (1, -1):
            if self._loss_d is None:
                assert self._discriminator_loss is not None
                self._loss_d = self._discriminator_loss()
            return self._loss_d
        raise IndexError(f"losses index {index} out of range for 2 players")

    @property
    def discriminator_computed(self) -> bool:
        return self._loss_d is not None


class GANClosure:
    """One step's closure for ``players = [G, D]`` on a fixed real batch and noise batch."""

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        loss_fn: LossFn,
        penalties: Sequence[Any],
        real: Tensor,
        z: Tensor,
        aux: dict[str, float],
        autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
        pushforward: bool = False,
        augment: BatchAugment | None = None,
    ) -> None:
        self.G, self.D, self.loss_fn, self.penalties = G, D, loss_fn, penalties
        self.real, self.z, self.aux = real, z, aux
        #: DiffAugment with this batch's parameters (None: D sees the images as they are)
        self.augment = augment
        self._critic = D if augment is None else Augmented(D, augment.real)
        self._real_seen: Tensor | None = None  # T(x), the same at every evaluation
        self.autocast = autocast
        self.eager = bool(getattr(loss_fn, "generator_uses_real", False))
        self._g_params = list(G.parameters())
        self._g_buffers = list(G.buffers())
        self._cache: tuple[tuple[int, ...], Tensor, list[Tensor], Tensor, list[Tensor] | None] | None = None
        #: the CPU and CUDA RNG states and G's buffers before the forward pass that made the (cached) samples
        self._before_forward: tuple[Tensor, list[Tensor] | None, dict[str, Tensor]] | None = None
        self.declares_pushforward = pushforward and autocast is None and supports_forward_tangents(G)
        #: how many evaluations reused G(z) (for tests and benchmarks)
        self.generator_reuses = 0
        #: the recorded layers of the forward pass that made the (cached) samples, and their tangent map
        self._recorder: ChainRecorder | None = None
        self._chain: ChainTangent | None = None
        #: how the last J_G·v was formed: "chain" (tangent-only pass over the recorded layers) or "jvp"
        self.tangent_path: str | None = None

    # ------------------------------------------------------------------ pieces
    def _forward(self, module: nn.Module, x: Tensor) -> Tensor:
        if self.autocast is None:
            return module(x)
        with self.autocast():  # models in reduced precision; losses and penalties in float32
            return module(x).float()

    def _versions(self) -> tuple[int, ...]:
        return tuple(p._version for p in self._g_params)

    def _generate(self) -> Tensor:
        """G(z), reused from the previous evaluation of this step while G's parameters are unchanged."""
        key = self._versions()
        if self._cache is not None and self._cache[0] == key:
            _, fake, buffers, cpu_rng, cuda_rng = self._cache
            for buf, value in zip(self._g_buffers, buffers):
                buf.data.copy_(value)  # no version bump: the reused graph saved these (see the optim base)
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
            self.generator_reuses += 1
            return fake
        if self.declares_pushforward:  # buffers too: a forward may read what it updates (spectral norm's u)
            self._before_forward = (torch.get_rng_state(),
                                    torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
                                    {n: b.detach().clone() for n, b in self.G.named_buffers()})
            self._chain = None
            with ChainRecorder(self.G) as self._recorder:
                fake = self._forward(self.G, self.z)
        else:
            fake = self._forward(self.G, self.z)
        self._cache = (
            key,
            fake,
            [b.detach().clone() for b in self._g_buffers],
            torch.get_rng_state(),
            torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        )
        return fake

    def generator_jvp(self, tangent: Sequence[Tensor]) -> Tensor:
        """J_G·tangent: the change of G(z) along ``tangent`` (shaped like G's parameters). When G's forward
        pass was a chain of standard layers, a tangent-only pass over its recorded activations
        (:mod:`~saddlepoint.games.tangents`); otherwise forward-mode differentiation of G at its current
        parameters with the evaluation's random stream and buffers (copies: running statistics are not touched)."""
        assert self._before_forward is not None and self._cache is not None
        if self._recorder is not None:  # first product of this forward pass: linearise it once
            self._chain = self._recorder.linearize(self.z, self._cache[1], self._g_params)
            self._recorder = None
        if self._chain is not None:
            self.tangent_path = "chain"
            return self._chain.jvp(tangent)
        self.tangent_path = "jvp"
        rng, cuda_rng, buffers = self._before_forward
        names = [name for name, _ in self.G.named_parameters()]
        params = {n: p.detach() for n, p in zip(names, self._g_params, strict=True)}
        tangents = dict(zip(names, tangent, strict=True))
        after = torch.get_rng_state()
        cuda_after = torch.cuda.get_rng_state_all() if cuda_rng is not None else None
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        try:
            return jvp(lambda ps: functional_call(self.G, (ps, {n: b.clone() for n, b in buffers.items()}),
                                                  (self.z,)), (params,), (tangents,))[1]
        finally:
            torch.set_rng_state(after)
            if cuda_after is not None:
                torch.cuda.set_rng_state_all(cuda_after)

    # ------------------------------------------------------------------ the closure
    def _discriminator_terms(self, fake: Tensor, d_fake: Tensor, outputs: dict[int, list[Tensor]]
                             ) -> tuple[Tensor, Tensor]:
        """D on the real batch, then ``(loss_G, loss_D + penalties)``; declares D(x) in ``outputs``."""
        if self._real_seen is None:
            self._real_seen = self.real if self.augment is None else self.augment.real(self.real)
        d_real = self._forward(self.D, self._real_seen)
        outputs[1] = [d_real, d_fake]
        self.aux.setdefault("d_real", float(d_real.detach().mean()))
        loss_g, loss_d = self.loss_fn(d_real, d_fake)
        for penalty in self.penalties:
            loss_d = loss_d + penalty(self._critic, self.real, fake)
        return loss_g, loss_d

    def __call__(self) -> LazyLosses:
        fake = self._generate()
        d_fake = self._forward(self.D, fake if self.augment is None else self.augment.fake(fake))
        self.aux.setdefault("d_fake", float(d_fake.detach().mean()))
        outputs: dict[int, list[Tensor]] = {0: [d_fake]}
        if self.eager:
            loss_g, loss_d = self._discriminator_terms(fake, d_fake, outputs)
            losses = LazyLosses(loss_g, None, loss_d)
        else:
            # the generator's loss depends on D(G(z)) alone: any stand-in for D(x) gives the same value
            loss_g = self.loss_fn(d_fake.detach(), d_fake)[0]
            losses = LazyLosses(loss_g, lambda: self._discriminator_terms(fake, d_fake, outputs)[1])
        losses.outputs = outputs
        if self.declares_pushforward and fake.requires_grad:
            losses.pushforward = {0: Pushforward(fake, self.generator_jvp)}
        return losses
