"""Human experts in the loop: a labeling web app over SQLite, agreement between humans and judges,
simulated annotators, and exports the judges train on (docs/architecture.md, layer 7)."""
