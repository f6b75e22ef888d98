"""Lightning callbacks that observe mask optimisations (``lightning_extremal.callbacks``).

They only observe: :class:`MaskEvolution` (mask frames and a GIF per image),
:class:`ConvergenceMonitor` (per-area mask change, optional early stop), :class:`FinalOverlays`
(a table of the final masks), :class:`StartingState` (step 0's scalars) and
:class:`StepProgressBar`. They log to a W&B logger when one is
attached and write files otherwise; wandb and matplotlib are imported only when used.
"""

from .convergence import ConvergenceMonitor
from .final_overlays import FinalOverlays
from .mask_evolution import MaskEvolution
from .progress import StepProgressBar
from .starting_state import StartingState

__all__ = [
    "ConvergenceMonitor",
    "FinalOverlays",
    "MaskEvolution",
    "StartingState",
    "StepProgressBar",
]
