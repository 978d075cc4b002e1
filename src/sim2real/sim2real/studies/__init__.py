"""Studies and paper reproductions: fitting consistency (Hopper), parameter recovery on the reality proxies, and
the combination-lock exploration study."""
