"""Performance-driven simulator tuning: sim parameters chosen for the real return of the policy trained in sim."""
