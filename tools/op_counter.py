"""Count kernel ops and host syncs of Python code on CPU (the counter of tools/census.py).

A ``TorchDispatchMode`` sees every aten op; the ones that launch no kernel on a GPU
(:data:`VIEW_OPS`, profiler marks) are left out of the kernel ops, and the ones that read
device memory on the host on CUDA are host syncs (:func:`dispatch_sync`). A
``TorchFunctionMode`` adds the host <-> device transfers that dispatch nothing on a CPU run
(:data:`TRANSFER_CALLS`). Each sync is attributed to its caller (:func:`sync_site`); syncs
inside CPU-only fallbacks (:data:`CPU_ONLY_FUNCTIONS`) are counted apart.

    >>> x = torch.ones(3)
    >>> with counting() as c:
    ...     _ = x.sum().item()
    >>> c.num_ops, c.num_syncs
    (2, 1)
"""
from __future__ import annotations

import collections
import contextlib
import os
import os.path as osp
import random
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Metadata-only aten ops (no kernel launch on a GPU), by op name without the overload.
VIEW_OPS = frozenset({
    'view', '_unsafe_view', 'select', 'slice', 'permute', 'transpose', 't', 'unsqueeze',
    'squeeze', 'expand', 'detach', 'alias', 'as_strided', 'lift_fresh', 'split', 'unbind',
    'split_with_sizes', 'chunk', 'narrow', 'view_as_real', 'view_as_complex', 'unfold',
    'diagonal', 'reshape', 'flatten', 'movedim', 'expand_as'})

#: Namespaces of dispatched ops that launch nothing (the optimiser's record_function marks).
HOST_ONLY_NAMESPACES = ('profiler',)

#: aten ops that read device memory on the host on CUDA (output size or a Python value
#: depends on the data). ``nonzero_static`` is not one: its output size is fixed, and its
#: CUDA kernel does not sync. ``repeat_interleave.Tensor`` syncs only without
#: ``output_size``; ``histc`` only when it has to find its range (min == max).
SYNC_OPS = frozenset({
    '_local_scalar_dense', 'nonzero', 'masked_select', 'unique_consecutive', '_unique',
    '_unique2', 'unique_dim', 'repeat_interleave', 'bincount', 'histc', 'equal',
    'allclose'})

#: Indexing ops that sync when an index is a boolean (or uint8) mask: the mask is turned
#: into indices by a ``nonzero`` inside the kernel.
MASK_INDEX_OPS = frozenset({'index', 'index_put', 'index_put_', '_index_put_impl_'})

#: Python-level calls that move data between host and device (``TorchFunctionMode`` names).
TRANSFER_CALLS = ('Tensor.tolist', 'Tensor.cpu', 'Tensor.to(cpu)', 'Tensor.new_tensor',
                  'torch.tensor(device=)', 'torch.as_tensor(device=)')

#: Functions that run only on a CPU run (a CUDA kernel replaces them on the GPU): host syncs
#: inside them are counted apart (``cpu_only_syncs``), not as syncs. mmcv's deformable
#: attention reads ``spatial_shapes`` on the host in its PyTorch fallback; its CUDA op does
#: not. (Their kernel ops are counted: see benchmarks/census.md.)
CPU_ONLY_FUNCTIONS = frozenset({
    ('mmcv/ops/multi_scale_deform_attn.py', 'multi_scale_deformable_attn_pytorch')})


def op_name(func: Any) -> str:
    """``aten.add.Tensor`` -> ``add``: the op name without namespace and overload."""
    parts = str(func).split('.')
    return parts[1] if len(parts) > 1 else parts[0]


def is_kernel(name: str) -> bool:
    """Whether a dispatched op (``str(func)``) launches a kernel on a GPU: not a view or
    other metadata-only op (:data:`VIEW_OPS`), not a profiler mark."""
    return op_name(name) not in VIEW_OPS and name.split('.', 1)[0] not in HOST_ONLY_NAMESPACES


def _is_mask(index: Any) -> bool:
    return isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8)


def dispatch_sync(func: Any, args: Sequence, kwargs: dict) -> str | None:
    """The name a dispatched op is counted under as a host sync, or None if it is not one.

    Args:
        func: the aten overload (``torch._ops.OpOverload``).
        args: its positional arguments.
        kwargs: its keyword arguments.

    Returns:
        ``str(func)``, with ``[mask]`` appended for boolean-mask indexing; None for ops
        that do not read device memory on the host.
    """
    name = op_name(func)
    if name in SYNC_OPS:
        if name == 'repeat_interleave' and (
                kwargs.get('output_size') is not None or str(func).endswith('.self_int')):
            return None
        if name == 'histc':
            lo = kwargs.get('min', args[2] if len(args) > 2 else 0)
            hi = kwargs.get('max', args[3] if len(args) > 3 else 0)
            if lo != hi:
                return None
        return str(func)
    if name in MASK_INDEX_OPS:
        indices = args[1] if len(args) > 1 else kwargs.get('indices', ())
        masks = [i for i in indices if _is_mask(i)]
        if not masks:
            return None
        if name != 'index':
            # ``t[mask] = scalar`` becomes ``masked_fill_`` inside index_put_ (one mask, a
            # one-element value on the host, no accumulate): no sync. A Python scalar
            # reaches the op as a 0-dim tensor; a 0-dim tensor computed on the device is
            # taken for one too (the census cannot tell where it would live).
            value = args[2] if len(args) > 2 else kwargs.get('values')
            accumulate = args[3] if len(args) > 3 else kwargs.get('accumulate', False)
            defined = [i for i in indices if i is not None]
            if (not accumulate and len(defined) == 1 and isinstance(value, torch.Tensor)
                    and value.dim() == 0):
                return None
        return f'{func}[mask]'
    return None


_TORCH_DIR = osp.dirname(torch.__file__) + os.sep
_THIS_FILE = osp.abspath(__file__)


def _site(path: str) -> str:
    """A file path relative to site-packages or the repository, for reports."""
    for marker in ('site-packages' + os.sep, REPO + os.sep):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def sync_site() -> tuple[str, bool]:
    """Where the current host sync comes from: ``path:function`` of the innermost caller
    outside torch and this tool, and whether a CPU-only function is on the stack."""
    frame = sys._getframe(1)
    site, cpu_only = None, False
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(_TORCH_DIR) and osp.abspath(path) != _THIS_FILE:
            short = _site(path)
            if site is None:
                site = f'{short}:{frame.f_code.co_name}'
            if (short, frame.f_code.co_name) in CPU_ONLY_FUNCTIONS:
                cpu_only = True
                break
        frame = frame.f_back
    return site or '<unknown>', cpu_only


@dataclass
class Count:
    """What one call dispatched.

    Attributes:
        ops: every dispatched aten op (views included), by overload name, e.g.
            ``aten.add.Tensor``.
        syncs: host syncs by name: aten ops (``aten.nonzero.default``, ``...[mask]`` for
            boolean-mask indexing) and host transfers (:data:`TRANSFER_CALLS`).
        sites: the same syncs by where they come from (``path:function``).
        cpu_only: syncs inside :data:`CPU_ONLY_FUNCTIONS` (not in ``syncs``), by site.
    """

    ops: collections.Counter = field(default_factory=collections.Counter)
    syncs: collections.Counter = field(default_factory=collections.Counter)
    sites: collections.Counter = field(default_factory=collections.Counter)
    cpu_only: collections.Counter = field(default_factory=collections.Counter)

    def add_sync(self, name: str) -> None:
        """Count a host sync under ``name`` and its site (or as CPU-only)."""
        site, cpu_only = sync_site()
        if cpu_only:
            self.cpu_only[site] += 1
        else:
            self.syncs[name] += 1
            self.sites[site] += 1

    @property
    def kernel_ops(self) -> collections.Counter:
        """``ops`` less the ones that launch no kernel (:func:`is_kernel`)."""
        return collections.Counter({k: v for k, v in self.ops.items() if is_kernel(k)})

    @property
    def num_ops(self) -> int:
        """Kernel ops: dispatched ops that launch a kernel (:func:`is_kernel`)."""
        return sum(self.kernel_ops.values())

    @property
    def num_syncs(self) -> int:
        """Host syncs (aten ops and host transfers)."""
        return sum(self.syncs.values())


class _DispatchCounter(TorchDispatchMode):
    """Counts every aten op dispatched, and the ones that sync on CUDA, into a Count."""

    def __init__(self, count: Count) -> None:
        super().__init__()
        self.count = count

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        self.count.ops[str(func)] += 1
        sync = dispatch_sync(func, args, kwargs)
        if sync is not None:
            self.count.add_sync(sync)
        return func(*args, **kwargs)


def _is_cpu(device: Any) -> bool:
    return device is not None and torch.device(device).type == 'cpu'


class _TransferCounter(TorchFunctionMode):
    """Counts host <-> device transfers that dispatch nothing on a CPU run.

    A device -> host read (``tolist``, ``cpu``, ``to('cpu')``) is counted unless its tensor
    is known to live on the host: returned by one of those calls, or made from Python data
    by ``torch.tensor``/``as_tensor`` without a device. Host data sent to a device
    (``new_tensor``, ``torch.tensor(..., device=...)``) is a blocking copy on CUDA: counted.
    """

    def __init__(self, count: Count) -> None:
        super().__init__()
        self.count = count
        self._host: dict[int, weakref.ref] = {}  # tensors known to live on the host, by id

    def _on_host(self, tensor: Any) -> bool:
        ref = self._host.get(id(tensor))
        return ref is not None and ref() is tensor

    def _mark_host(self, tensor: torch.Tensor) -> None:
        self._host[id(tensor)] = weakref.ref(tensor)

    def _read(self, name: str, tensor: Any) -> None:
        if isinstance(tensor, torch.Tensor) and not self._on_host(tensor):
            self.count.add_sync(name)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = getattr(func, '__name__', '')
        out = func(*args, **kwargs)
        if name == 'tolist' and args:
            self._read('Tensor.tolist', args[0])
        elif name in ('cpu', 'to') and args and isinstance(out, torch.Tensor):
            # ``.to('cpu')`` only: ``.to(x.device)`` is cpu here but a no-op on CUDA
            target = kwargs.get('device')
            if name == 'to' and target is None:
                target = next((a for a in args[1:] if isinstance(a, str)), None)
            if name == 'cpu' or (isinstance(target, str) and _is_cpu(target)):
                self._read(f'Tensor.{name}' if name == 'cpu' else 'Tensor.to(cpu)', args[0])
                self._mark_host(out)
        elif name == 'new_tensor' and args and not self._on_host(args[0]):
            self.count.add_sync('Tensor.new_tensor')
        elif name in ('tensor', 'as_tensor') and func in (torch.tensor, torch.as_tensor):
            data = args[0] if args else kwargs.get('data')
            if kwargs.get('device') is not None and not isinstance(data, torch.Tensor):
                self.count.add_sync(f'torch.{name}(device=)')
            elif kwargs.get('device') is None and isinstance(out, torch.Tensor) \
                    and not isinstance(data, torch.Tensor):
                self._mark_host(out)
        return out


@contextlib.contextmanager
def counting() -> Iterator[Count]:
    """Count the kernel ops and host syncs of what runs inside the block.

    Yields:
        A :class:`Count` that fills while the block runs.

    Example:
        >>> x = torch.ones(3)
        >>> with counting() as c:
        ...     _ = x.sum().item()
        >>> c.num_ops, c.num_syncs
        (2, 1)
    """
    count = Count()
    with _TransferCounter(count), _DispatchCounter(count):
        yield count


def seed_all(seed: int) -> None:
    """Seed Python's, torch's and numpy's generators."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy comes with torch's dependents
        pass


def count_calls(fn: Callable[[], Any], repeats: int = 2, seed: int = 0) -> Count:
    """Warm ``fn`` up once, then count it ``repeats`` times (seeded the same each time).

    Raises:
        RuntimeError: if two counted calls dispatch different ops (the count would
            depend on state left by earlier calls, or on unseeded randomness).
    """
    seed_all(seed)
    fn()
    counts = []
    for _ in range(max(1, repeats)):
        seed_all(seed)
        with counting() as c:
            fn()
        counts.append(c)
    for other in counts[1:]:
        if other.ops != counts[0].ops or other.syncs != counts[0].syncs:
            diff = (other.ops - counts[0].ops) + (counts[0].ops - other.ops)
            raise RuntimeError('op counts differ between two identical calls: '
                               f'{dict(diff.most_common(10))}')
    return counts[0]


def foreach_sgd() -> contextlib.AbstractContextManager:
    """While active, ``torch.optim.SGD`` defaults to its foreach form (as on CUDA)."""
    base = torch.optim.SGD

    class ForeachSGD(base):  # type: ignore[misc, valid-type]
        def __init__(self, params: Any, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault('foreach', True)
            super().__init__(params, *args, **kwargs)

    @contextlib.contextmanager
    def patched() -> Iterator[None]:
        torch.optim.SGD = ForeachSGD
        try:
            yield
        finally:
            torch.optim.SGD = base

    return patched()
