"""Test-time search: spend compute at inference with a judge (see search/base.py).

Importing the package registers the methods: `majority`, `best_of_n`, `weighted_best_of_n`
(search/selection.py), `beam`, `dvts` (search/tree.py) and `mcts` (search/mcts.py).
"""

from reasonlab.search import mcts as _mcts  # noqa: F401  (registers the methods)
from reasonlab.search import selection as _selection  # noqa: F401
from reasonlab.search import tree as _tree  # noqa: F401
