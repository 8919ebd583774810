"""facebench task plugins: accuracy, correlation, conditioned averages, relative difference."""
