"""CrossArchDistill: CAKD (Liu et al., ACCV 2022) from a transformer teacher into a CNN."""
from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn

from densekd.registry import MODELS

from ..losses._checks import check_choice, check_keys, check_range, check_weight
from ..losses.cakd import discriminator_loss, generator_loss, gl_loss, pca_loss
from ..projectors.gl import GLProjector
from ..projectors.pca import PCAProjector
from ..projectors.tokens import (
    align_map,
    attention_map,
    qkv_from_mha,
    split_qkv,
    swin_relative_position_bias,
    swin_shift_mask,
    to_map,
)
from .base import DistillComponent, TapLevels, TapShapes
from .multi_view import FeatureDiscriminator, MultiViewGenerator

__all__ = ['CrossArchDistill']

# DistillationModel.train_step steps keys ending in this with optim_wrapper['discriminator']
DISCRIMINATOR_KEY = 'loss_discriminator'


@MODELS.register_module()
class CrossArchDistill(DistillComponent):
    """CAKD's PCA and GL projectors and multi-view robust training, one student level.

    * ``loss_pca`` (:func:`pca_loss`): the student map, resized to the teacher's token grid,
      goes through the :class:`PCAProjector` and its (partially cross) attention and values
      are compared with those of the teacher's tapped attention block.
      ``attention='swin'``: ``teacher_attn`` is an mmdet/mmseg Swin ``...attn.w_msa.qkv``
      Linear; heads, window and shift are read from the teacher's modules and the attention
      is the window attention of that block (see :mod:`densekd.models.projectors.tokens`).
      ``attention='mha'``: ``teacher_attn`` taps a ViT block's pre-attention tokens
      (``layers.<i>.ln1``) and ``mha`` names its ``nn.MultiheadAttention``
      (``layers.<i>.attn.attn``); global attention among the patch tokens (the
      ``num_extra_tokens`` class tokens are dropped before q/k/v).
    * ``loss_gl`` (:func:`gl_loss`): the :class:`GLProjector` output vs ``teacher_feat``
      (a map, or tokens laid out on the student's grid).
    * ``mvg``: a :class:`MultiViewGenerator` on the GL output and a
      :class:`FeatureDiscriminator`; ``loss_gen`` for the student and ``loss_discriminator``
      for the discriminator's own optimiser (needs ``optim_wrapper`` with a
      ``'discriminator'`` entry, see :class:`DiscriminatorOptimWrapperConstructor`).

    Swin: the teacher's grid is taken to be the student map's size at the chosen level (pair
    levels of equal stride); the dry run checks it against the teacher's window count. ViT /
    MiT (``'mha'``): the student grid if the token count matches, else the square grid of
    the tokens, and the student map is resized to it (``align``).

    Args:
        student: student tap (e.g. ``'backbone'``); ``student_level`` picks one of its levels.
        student_level: index into the tap's levels.
        teacher_attn: teacher tap giving q/k/v (see above); None disables ``loss_pca``.
        teacher_feat: teacher tap for GL; None disables ``loss_gl`` (and ``mvg``).
        teacher_level: level of ``teacher_feat``.
        attention: ``'swin'`` or ``'mha'``.
        mha: module path of the ``nn.MultiheadAttention`` (``attention='mha'``).
        num_extra_tokens: leading class/distillation tokens of token taps.
        pca: ``dict(p=0.5, replace='matrix', value='relation', rel_pos_bias=False,
            loss_weight=1.0)``; keys not given take these defaults.
        gl: ``dict(group_size=(4, 4), sharing='phase', dropout=0.0, loss_weight=1.0)``.
        mvg: None (off) or ``dict(prob=0.5, views=('mask', 'crop'), hidden_channels=256,
            loss_weight=1.0, disc_weight=1.0)``.
        align: ``'bilinear'`` or ``'pool'``, to bring the student map to the teacher's grid.
    """

    def __init__(self, student: str, student_level: int = -1, teacher_attn: str | None = None,
                 teacher_feat: str | None = None, teacher_level: int = -1,
                 attention: str = 'swin', mha: str | None = None, num_extra_tokens: int = 0,
                 pca: dict | None = None, gl: dict | None = None, mvg: dict | None = None,
                 align: str = 'bilinear', init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if attention not in ('swin', 'mha'):
            raise ValueError(f"attention must be 'swin' or 'mha', got {attention!r}")
        if attention == 'mha' and teacher_attn is not None and mha is None:
            raise ValueError("attention='mha' needs mha=<path of the nn.MultiheadAttention>")
        if mvg is not None and teacher_feat is None:
            raise ValueError('mvg works on the GL projection; set teacher_feat')
        self.student, self.student_level = student, student_level
        self.teacher_attn, self.teacher_feat = teacher_attn, teacher_feat
        self.teacher_level = teacher_level
        self.attention, self.mha, self.num_extra_tokens = attention, mha, num_extra_tokens
        self.pca_cfg = dict(dict(p=0.5, replace='matrix', value='relation',
                                 rel_pos_bias=False, loss_weight=1.0), **(pca or {}))
        self.gl_cfg = dict(dict(group_size=(4, 4), sharing='phase', dropout=0.0,
                                loss_weight=1.0), **(gl or {}))
        self.mvg_cfg = None if mvg is None else dict(
            dict(prob=0.5, views=('mask', 'crop'), hidden_channels=256, loss_weight=1.0,
                 disc_weight=1.0), **mvg)
        owner = 'CrossArchDistill'
        for group, cfg, keys in (
                ('pca', self.pca_cfg, ('p', 'replace', 'value', 'rel_pos_bias', 'loss_weight')),
                ('gl', self.gl_cfg, ('group_size', 'sharing', 'dropout', 'loss_weight')),
                ('mvg', self.mvg_cfg,
                 ('prob', 'views', 'hidden_channels', 'loss_weight', 'disc_weight'))):
            if cfg is not None:
                check_keys(owner, group, cfg, keys)
                for key in ('loss_weight', 'disc_weight'):
                    if key in cfg:
                        check_weight(owner, f'{group}.{key}', cfg[key])
        check_range(owner, 'pca.p', self.pca_cfg['p'], 0.0, 1.0)
        check_choice(owner, 'pca.value', self.pca_cfg['value'], ('relation', 'mse'))
        check_range(owner, 'gl.dropout', self.gl_cfg['dropout'], 0.0, 1.0, high_open=True)
        if self.mvg_cfg is not None:
            check_range(owner, 'mvg.prob', self.mvg_cfg['prob'], 0.0, 1.0)
        self.align = check_choice('CrossArchDistill', 'align', align, ('bilinear', 'pool'))
        self.student_taps = [student]
        self.teacher_taps = [p for p in (teacher_attn, teacher_feat) if p is not None]
        self.window_size: int | None = None
        self.shift_size = 0
        self.pca_projector: PCAProjector | None = None
        self.gl_projector: GLProjector | None = None

    # -- build ---------------------------------------------------------------------------
    def _parent(self, path: str, up: int = 1) -> nn.Module:
        return self.teacher_model.get_submodule(path.rsplit('.', up)[0])

    def setup(self, student_shapes: TapShapes, teacher_shapes: TapShapes) -> None:
        """Size the projectors; read the Swin window/shift/heads from the teacher."""
        s = student_shapes[self.student][self.student_level]
        if len(s) != 4:
            raise ValueError(f'CrossArchDistill: student level shape {tuple(s)}; need a map')
        grid = (int(s[2]), int(s[3]))
        self.teacher_grid = grid
        if self.teacher_attn is not None:
            t = teacher_shapes[self.teacher_attn][0]
            if self.attention == 'swin':
                w_msa = self._parent(self.teacher_attn)
                heads, channels = w_msa.num_heads, int(t[-1]) // 3
                self.window_size = int(w_msa.window_size[0])
                self.shift_size = int(getattr(self._parent(self.teacher_attn, 2),
                                              'shift_size', 0))
                ws = self.window_size
                expect = -(-grid[0] // ws) * -(-grid[1] // ws)
                if int(t[0]) != expect or int(t[1]) != ws * ws:
                    raise ValueError(
                        f'CrossArchDistill: teacher qkv {tuple(t)} is not {expect} windows of '
                        f'{ws}x{ws} on the student grid {grid}; pair levels of equal stride')
            else:
                mha = self.teacher_model.get_submodule(self.mha)
                heads, channels = mha.num_heads, mha.embed_dim
                if getattr(self._parent(self.mha), 'sr_ratio', 1) > 1:
                    raise ValueError('CrossArchDistill: spatial-reduction attention (MiT '
                                     'sr_ratio > 1) is not supported; tap a block of the '
                                     'last MiT stage (sr_ratio 1)')
                self.teacher_grid = self._token_grid(int(t[1]), grid)
            self.pca_projector = PCAProjector(
                int(s[1]), channels, heads, p=self.pca_cfg['p'],
                replace=self.pca_cfg['replace'])
        if self.teacher_feat is not None:
            t = teacher_shapes[self.teacher_feat][self.teacher_level]
            t_channels = int(t[1]) if len(t) == 4 else int(t[-1])
            t_grid = tuple(int(v) for v in t[2:]) if len(t) == 4 else \
                self._token_grid(int(t[1]), grid)
            self.gl_projector = GLProjector(
                int(s[1]), t_channels, self.gl_cfg['group_size'], self.gl_cfg['sharing'],
                grid=t_grid, dropout=self.gl_cfg['dropout'])
            if self.mvg_cfg is not None:
                self.generator = MultiViewGenerator(self.mvg_cfg['prob'], self.mvg_cfg['views'])
                self.discriminator = FeatureDiscriminator(t_channels,
                                                          self.mvg_cfg['hidden_channels'])

    def _token_grid(self, num_tokens: int, grid: tuple[int, int]) -> tuple[int, int]:
        """The grid of ``num_tokens`` tokens: ``grid`` if it fits, else a square one."""
        n = num_tokens - self.num_extra_tokens
        if n == grid[0] * grid[1]:
            return grid
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f'CrossArchDistill: {n} teacher tokens are neither the grid '
                             f'{grid} nor square')
        return side, side

    # -- forward -------------------------------------------------------------------------
    def teacher_qkv(self, teacher: TapLevels) -> tuple[Tensor, Tensor, Tensor]:
        """The tapped block's q, k, v, each (B', heads, N, d)."""
        x = teacher[self.teacher_attn][0]
        if self.attention == 'swin':
            return split_qkv(x, self.pca_projector.num_heads)
        return qkv_from_mha(x[:, self.num_extra_tokens:],
                            self.teacher_model.get_submodule(self.mha))

    def _pca(self, s: Tensor, teacher: TapLevels) -> Tensor:
        q_t, k_t, v_t = self.teacher_qkv(teacher)
        if self.attention == 'mha':  # global attention: the student map at the token grid
            n = teacher[self.teacher_attn][0].shape[1]
            s = align_map(s, self._token_grid(n, tuple(s.shape[-2:])), self.align)
        bias = None
        if self.attention == 'swin' and self.pca_cfg['rel_pos_bias']:
            bias = swin_relative_position_bias(self._parent(self.teacher_attn)).detach()
        out = self.pca_projector(s, (q_t, k_t, v_t), self.window_size, self.shift_size, bias)
        mask = None
        if self.window_size is not None and self.shift_size > 0:
            mask = swin_shift_mask(s.shape[-2:], self.window_size, self.shift_size, s.device)
        attn_t = attention_map(q_t, k_t, bias=bias, window_mask=mask)
        loss = pca_loss(out['attn'], attn_t, out['value'], v_t, self.pca_cfg['value'])
        return self.pca_cfg['loss_weight'] * loss

    def forward(self, student: TapLevels, teacher: TapLevels,
                data_samples: list[Any] | None = None) -> dict[str, Tensor]:
        """``loss_pca``, ``loss_gl``, and with ``mvg`` ``loss_gen`` + ``loss_discriminator``."""
        s = student[self.student][self.student_level]
        losses = {}
        if self.pca_projector is not None:
            losses['loss_pca'] = self._pca(s, teacher)
        if self.gl_projector is not None:
            t = teacher[self.teacher_feat][self.teacher_level]
            if t.dim() == 3:
                t = to_map(t, self._token_grid(t.shape[1], tuple(s.shape[-2:])),
                           self.num_extra_tokens)
            s_gl = self.gl_projector(align_map(s, t.shape[-2:], self.align))
            losses['loss_gl'] = self.gl_cfg['loss_weight'] * gl_loss(s_gl, t)
            if self.mvg_cfg is not None:
                fake = self.generator(s_gl)
                losses['loss_gen'] = self.mvg_cfg['loss_weight'] * generator_loss(
                    self.discriminator.frozen(fake))
                losses[DISCRIMINATOR_KEY] = self.mvg_cfg['disc_weight'] * discriminator_loss(
                    self.discriminator(t.detach()), self.discriminator(fake.detach()))
        return losses
