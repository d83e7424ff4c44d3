"""Models: distiller, components, losses, matchers, ops, projectors, segmentors, selectors,
taps."""
from .components import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .matchers import *  # noqa: F401,F403
from .ops import *  # noqa: F401,F403
from .projectors import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .selectors import *  # noqa: F401,F403
from .taps import ModuleTap, StopForward, TapError, TapSet  # noqa: F401
