"""Reports from files: the run report, the sufficiency report and the sweep report, on one toolkit."""
