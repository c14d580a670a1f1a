"""Transfer studies: the study file, its grid of steps, the resumable runner, launchers and the report."""
