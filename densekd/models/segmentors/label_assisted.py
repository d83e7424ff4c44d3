"""LabelAssistedSegmentor: an mmseg EncoderDecoder that also sees a noised label channel.

Qiu, Chen, Li, Wan, Xue and Pu, "Make a Strong Teacher with Label Assistance: A Novel
Knowledge Distillation Approach for Semantic Segmentation", ECCV 2024 (arXiv 2407.13254),
official code ``skyshoumeng/Label_Assisted_Distillation`` (``train_baseline.py``). The teacher
gets the ground truth as privileged input (see :mod:`.label_encoding`); a plain student is
then distilled from it with the usual components (e.g. ``FeatureMimic`` + CWD on the logits).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from mmseg.models.segmentors import BaseSegmentor, CascadeEncoderDecoder, EncoderDecoder
from mmseg.utils import add_prefix
from torch import Tensor, nn

from densekd.registry import MODELS

from ..losses.cwd import channel_wise_divergence
from . import label_encoding as le

__all__ = ['LabelAssistedSegmentor', 'dual_path_consistency', 'find_first_conv',
           'widen_first_conv']

FIRST_CONV_CANDIDATES = ('backbone.stem.0.conv', 'backbone.stem.0', 'backbone.conv1.conv',
                         'backbone.conv1')


def dual_path_consistency(logits_1: Tensor, logits_2: Tensor, tau: float = 4.0) -> Tensor:
    """Symmetric CWD between the two label-assisted paths (LAD's consistency term).

    ``CWD(o1, o2) + CWD(o2, o1)`` with :func:`channel_wise_divergence` (softmax over H*W
    per channel, KL summed over locations, mean over N*C, times tau^2); in each term the
    second argument is the detached target, as in the reference.

    Args:
        logits_1: decode-head logits of path 1, (N, C, h, w).
        logits_2: the same for path 2.
        tau: temperature (reference 4).

    Returns:
        A scalar; zero for identical inputs.
    """
    return (channel_wise_divergence(logits_1, logits_2, tau)
            + channel_wise_divergence(logits_2, logits_1, tau))


def find_first_conv(model: nn.Module, path: str | None = None) -> tuple[str, nn.Conv2d]:
    """The input convolution of a segmentor: ``path`` if given, else a known stem name
    (ResNetV1c ``backbone.stem.0[.conv]``, ResNet ``backbone.conv1``), else the first
    ``nn.Conv2d`` with 3 input channels in module order.

    Raises:
        ValueError: naming the paths tried when nothing fits.
    """
    modules = dict(model.named_modules())
    if path is not None:
        if not isinstance(modules.get(path), nn.Conv2d):
            raise ValueError(f'first_conv={path!r} is not an nn.Conv2d of the segmentor '
                             f'(found {type(modules.get(path)).__name__})')
        return path, modules[path]
    for name in FIRST_CONV_CANDIDATES:
        if isinstance(modules.get(name), nn.Conv2d):
            return name, modules[name]
    for name, module in modules.items():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            return name, module
    raise ValueError(f'LabelAssistedSegmentor: no first convolution found: none of '
                     f'{list(FIRST_CONV_CANDIDATES)} is an nn.Conv2d and no nn.Conv2d has '
                     "in_channels == 3; name it with first_conv='<module path>'")


def _pad_rgb_weight(module: nn.Conv2d, state_dict: dict, prefix: str, *args,
                    rgb_channels: int) -> None:
    """load_state_dict pre-hook: pad an RGB checkpoint's weight with zero label channels."""
    key = prefix + 'weight'
    weight = state_dict.get(key)
    extra = module.in_channels - rgb_channels
    if weight is not None and weight.dim() == 4 and weight.shape[1] == rgb_channels and extra:
        zeros = weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])
        state_dict[key] = torch.cat([weight, zeros], dim=1)


def widen_first_conv(conv: nn.Conv2d, extra: int) -> None:
    """Give ``conv`` ``extra`` more input channels with zero weights, in place.

    The existing weights are kept, and a load_state_dict pre-hook pads any checkpoint
    weight that has the original channel count, so RGB checkpoints load unchanged.
    """
    if conv.groups != 1:
        raise ValueError(f'cannot widen a grouped first convolution (groups={conv.groups})')
    rgb = conv.in_channels
    with torch.no_grad():
        weight = conv.weight
        zeros = weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])
        conv.weight = nn.Parameter(torch.cat([weight, zeros], dim=1))
    conv.in_channels = rgb + extra
    conv.register_load_state_dict_pre_hook(functools.partial(_pad_rgb_weight,
                                                             rgb_channels=rgb))


def _accept_plain_segmentor_keys(module: LabelAssistedSegmentor, state_dict: dict,
                                 prefix: str, *args) -> None:
    """load_state_dict pre-hook: a plain segmentor checkpoint (``backbone.*``, ...) loads
    into ``segmentor.*``."""
    inner = prefix + 'segmentor.'
    if any(k.startswith(inner) for k in state_dict):
        return
    children = tuple(prefix + name + '.' for name, _ in module.segmentor.named_children())
    metadata = getattr(state_dict, '_metadata', None)
    for key in [k for k in state_dict if k.startswith(children)]:
        state_dict[inner + key[len(prefix):]] = state_dict.pop(key)
    if metadata is not None:
        for key in [k for k in metadata if (k + '.').startswith(children)]:
            metadata[inner[:-1] + '.' + key[len(prefix):]] = metadata[key]


@MODELS.register_module()
class LabelAssistedSegmentor(BaseSegmentor):
    """Wrap any mmseg ``EncoderDecoder`` so that it also reads a noised label channel.

    * The batch goes through the segmentor's data preprocessor (RGB normalisation); the
      label channel is appended afterwards.
    * The first convolution gets one more input channel whose weights start at **zero**
      (the issue's choice; the reference initialises them ``randn * 0.1``), so the widened
      model with a zero label channel computes exactly what the RGB model computes, and a
      3-channel checkpoint -- or a whole plain segmentor checkpoint, keys without
      ``segmentor.`` -- loads unchanged (pre-hooks pad the weight and map the keys).
    * ``loss``: two independently encoded inputs (random codes, see
      :func:`~.label_encoding.random_code_encoding`), the segmentor's decode and auxiliary
      losses on each (``path1.*``, ``path2.*``), and ``loss_consistency =
      consistency_weight * dual_path_consistency(o1, o2, consistency_tau)`` on the decode
      logits. Reference: ``L = CE(o1) + 0.4 CE(aux1) + CE(o2) + 0.4 CE(aux2) +
      5 [CWD(o1, o2) + CWD(o2, o1)]``, tau 4.
    * ``mode='tensor'`` (how ``DistillationModel`` runs a teacher): samples with
      ``gt_sem_seg`` get the deterministic code (:func:`~.label_encoding.fixed_code_encoding`),
      samples without (no data samples at all, or the dry run's metadata-only samples) a
      zero channel, i.e. the unassisted teacher.
    * ``mode='predict'``: the same, when ``assist_at_test``; otherwise always a zero
      channel (the reference validates its teacher that way).

    Args:
        segmentor: an mmseg ``EncoderDecoder`` config, unchanged (or a built one).
        num_classes: ``K``; default the decode head's ``num_classes``.
        ignore_index: label value with its own code; default the decode head's.
        scale: multiplier of the label channel (reference 100).
        train_noise_std: per-pixel noise of the training encoding (reference 0.03).
        fixed_step: spacing of the deterministic codes (reference 0.1).
        fixed_noise_std: per-pixel noise of the deterministic encoding (reference 0.02).
        consistency_weight: weight of the symmetric CWD between the paths (reference 5).
        consistency_tau: its temperature (reference 4).
        assist_at_test: whether ``predict`` uses the ground truth when present.
        first_conv: module path, inside the segmentor, of the convolution to widen; default
            found by :func:`find_first_conv`.
        data_preprocessor: default the segmentor's own. Configs repeat it here so that a
            ``DistillationModel`` reading this config sees the teacher's normalisation.
        init_cfg: mmengine init config.
    """

    def __init__(self, segmentor: dict | EncoderDecoder, num_classes: int | None = None,
                 ignore_index: int | None = None, scale: float = 100.0,
                 train_noise_std: float = 0.03, fixed_step: float = 0.1,
                 fixed_noise_std: float = 0.02, consistency_weight: float = 5.0,
                 consistency_tau: float = 4.0, assist_at_test: bool = True,
                 first_conv: str | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        if isinstance(segmentor, dict):
            segmentor = dict(segmentor)
            if isinstance(segmentor.get('type'), str) and '.' not in segmentor['type']:
                segmentor.setdefault('_scope_', 'mmseg')
            segmentor = MODELS.build(segmentor)
        if not isinstance(segmentor, EncoderDecoder) or isinstance(segmentor,
                                                                   CascadeEncoderDecoder):
            raise TypeError(f'LabelAssistedSegmentor wraps an mmseg EncoderDecoder with one '
                            f'decode head, got {type(segmentor).__name__}')
        if data_preprocessor is None:
            data_preprocessor = segmentor.data_preprocessor
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.segmentor = segmentor
        head = segmentor.decode_head
        self.num_classes = int(num_classes if num_classes is not None else head.num_classes)
        self.ignore_index = int(ignore_index if ignore_index is not None
                                else getattr(head, 'ignore_index', 255))
        self.scale = scale
        self.train_noise_std = train_noise_std
        self.fixed_step = fixed_step
        self.fixed_noise_std = fixed_noise_std
        self.consistency_weight = consistency_weight
        self.consistency_tau = consistency_tau
        self.assist_at_test = assist_at_test
        self.first_conv_path, conv = find_first_conv(segmentor, first_conv)
        self.rgb_channels = conv.in_channels
        self.label_channels = 1
        widen_first_conv(conv, self.label_channels)
        self.register_load_state_dict_pre_hook(_accept_plain_segmentor_keys)

    @property
    def first_conv(self) -> nn.Conv2d:
        """The widened input convolution."""
        return self.segmentor.get_submodule(self.first_conv_path)

    def init_weights(self) -> None:
        """Initialise the segmentor, then set the label-channel weights to zero."""
        super().init_weights()
        with torch.no_grad():
            self.first_conv.weight[:, self.rgb_channels:].zero_()

    # -- inputs ------------------------------------------------------------------------
    @property
    def num_values(self) -> int:
        """Number of codes: the classes and the ignore value."""
        return self.num_classes + 1

    def _check_rgb(self, inputs: Tensor) -> None:
        if inputs.shape[1] != self.rgb_channels:
            raise ValueError(f'LabelAssistedSegmentor expects the {self.rgb_channels}-channel '
                             f'preprocessed image, got {inputs.shape[1]} channels')

    def train_inputs(self, inputs: Tensor, values: Tensor) -> Tensor:
        """Image plus a random-code label channel (one draw per call)."""
        self._check_rgb(inputs)
        code = le.random_code_encoding(values, self.num_values, self.train_noise_std, self.scale)
        return torch.cat([inputs, code.to(inputs.dtype)], dim=1)

    def assisted_inputs(self, inputs: Tensor, data_samples: Sequence | None) -> Tensor:
        """Image plus the deterministic-code channel (zero for samples without ground truth)."""
        self._check_rgb(inputs)
        enc = inputs.new_zeros(inputs.shape[0], self.label_channels, *inputs.shape[2:])
        labels, idx = le.label_maps_from_samples(data_samples, inputs.shape[2:],
                                                 self.ignore_index)
        if idx:
            values = le.label_values(labels.to(inputs.device), self.num_classes,
                                     self.ignore_index)
            enc[idx] = le.fixed_code_encoding(values, self.num_values, self.fixed_step,
                                           self.fixed_noise_std, self.scale).to(inputs.dtype)
        return torch.cat([inputs, enc], dim=1)

    # -- BaseSegmentor API ----------------------------------------------------------------
    def extract_feat(self, inputs: Tensor, data_samples: Sequence | None = None) -> list:
        """Segmentor features of the assisted input (zero channel without ground truth)."""
        return self.segmentor.extract_feat(self.assisted_inputs(inputs, data_samples))

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """Logits at input size for the unassisted input (metas carry no ground truth)."""
        return self.segmentor.encode_decode(self.assisted_inputs(inputs, None),
                                            batch_img_metas)

    def _forward(self, inputs: Tensor, data_samples: Sequence | None = None) -> Tensor:
        """Decode-head logits; the label channel from ``gt_sem_seg`` where present."""
        return self.segmentor._forward(self.assisted_inputs(inputs, data_samples), data_samples)

    def predict(self, inputs: Tensor, data_samples: Sequence | None = None) -> list:
        """Segmentor predictions, label-assisted when ``assist_at_test``."""
        x = self.assisted_inputs(inputs, data_samples if self.assist_at_test else None)
        return self.segmentor.predict(x, data_samples)

    def loss(self, inputs: Tensor, data_samples: Sequence) -> dict[str, Tensor]:
        """Segmentation losses of both noised paths plus their consistency."""
        labels, idx = le.label_maps_from_samples(data_samples, inputs.shape[2:],
                                                 self.ignore_index)
        if len(idx) != inputs.shape[0]:
            raise ValueError('LabelAssistedSegmentor.loss needs gt_sem_seg in every sample')
        values = le.label_values(labels.to(inputs.device), self.num_classes,
                                 self.ignore_index)
        seg = self.segmentor
        losses, logits = {}, []
        for path in (1, 2):
            feats = seg.extract_feat(self.train_inputs(inputs, values))
            seg_logits = seg.decode_head(feats)
            path_losses = add_prefix(seg.decode_head.loss_by_feat(seg_logits, data_samples),
                                     'decode')
            if seg.with_auxiliary_head:
                path_losses.update(seg._auxiliary_head_forward_train(feats, data_samples))
            losses.update(add_prefix(path_losses, f'path{path}'))
            logits.append(seg_logits)
        if self.consistency_weight:
            losses['loss_consistency'] = self.consistency_weight * dual_path_consistency(
                *logits, self.consistency_tau)
        return losses
