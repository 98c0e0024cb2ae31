"""Classical baselines, each behind the one Recommender protocol."""
