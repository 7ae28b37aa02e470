"""The model suite; models/classic.py holds the pre-deep-learning classifiers."""
