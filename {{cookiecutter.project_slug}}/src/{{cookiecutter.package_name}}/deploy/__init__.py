"""Deploys: the model registry (register, promote, roll back) and the canary that decides a promotion."""
