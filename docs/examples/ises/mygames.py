"""A Python game factory for `toolbox play-ises 'py:docs/examples/ises/mygames.py:dice_sum,faces=4'`."""
import itertools

from toolbox.ises.game_api import TableGame


def dice_sum(faces: int = 4) -> TableGame:
    """Two hidden dice (ordered pair) of `faces` faces each; a query names a number k and hears whether the
    first die, the second die, both or neither show k (a query game)."""
    secrets = [f"{a}{b}" for a, b in itertools.product(range(1, faces + 1), repeat=2)]
    actions = [str(k) for k in range(1, faces + 1)]
    outcomes = ["neither", "first", "second", "both"]
    table = [[(s[0] == k) + 2 * (s[1] == k) for s in secrets] for k in actions]
    return TableGame(f"dice:faces={faces}", secrets, actions, outcomes, table)
