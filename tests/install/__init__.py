"""Installation checks: the built wheel and sdist in fresh virtual environments, the Colab path
of the notebooks' first cell, and which dependencies (core or an extra) each import needs."""
