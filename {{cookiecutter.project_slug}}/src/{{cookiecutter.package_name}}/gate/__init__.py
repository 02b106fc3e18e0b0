"""The pull-request gate: the metrics of a change judged against the base branch's, by the base's policy.

compare (the only part that runs DVC and git) -> judge -> render; policy reads the base's rules.
"""
